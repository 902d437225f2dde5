-- What the GPU did (spec 3.5), per observation where Prometheus answered with dcgm-exporter's series: utilisation
-- (mean over the pod's GPUs, 0..1), framebuffer memory used (sum, bytes), and the GPU model (DCGM's modelName, or
-- the node's nvidia.com/gpu.product label). Nullable, so every existing row stays valid.

alter table container_observations
    add column if not exists gpu_utilization numeric,
    add column if not exists gpu_memory_used_bytes bigint,
    add column if not exists gpu_model text;

alter table container_observations_overflow
    add column if not exists gpu_utilization numeric,
    add column if not exists gpu_memory_used_bytes bigint,
    add column if not exists gpu_model text;

comment on column container_observations.gpu_utilization is
'Mean over the pod''s GPUs of the 5-minute average of DCGM_FI_PROF_GR_ENGINE_ACTIVE (else DCGM_FI_DEV_GPU_UTIL / 100).';
comment on column container_observations.gpu_memory_used_bytes is
'Framebuffer memory used on the pod''s GPUs (DCGM_FI_DEV_FB_USED), summed, in bytes; null where unknown.';
comment on column container_observations.gpu_model is
'The GPU model: DCGM''s modelName, else the node''s nvidia.com/gpu.product label; null where unknown.';
