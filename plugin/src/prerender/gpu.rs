//! The GPU texture renderer: two `wgpu` compute kernels (`shaders/texture_pad.wgsl`,
//! `shaders/texture_grains.wgsl`) rendering a [`TextureDesc`] with the CPU path's
//! math.
//!
//! Device acquisition ([`GpuContext::new`]) is apart from rendering
//! ([`GpuRenderer::new`] takes a context, as wgpu's `hello_compute` does); pipelines
//! and buffers are built once and reused, growing only when a phrase needs more
//! (wgpu's `repeated_compute`); every resource is labelled. Every render runs inside
//! out-of-memory, validation and internal error scopes, and the device-lost callback
//! raises a flag, so each failure comes back as a typed [`GpuError`] for the caller
//! to fall back on the CPU. Uncaptured errors are recorded, never panicked on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use bytemuck::{Pod, Zeroable};

use super::texture::{Grain, Partial, TextureDesc, Voice, PHASE_SCALE, SIN_COEFS};

/// Invocations per workgroup (handed to the kernels' `WG_SIZE` override).
pub const WORKGROUP_SIZE: u32 = 64;

/// A GPU failure. Each one makes the pre-renderer fall back on the CPU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// No adapter (or none usable) was found.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused a device.
    #[error("cannot create a GPU device: {0}")]
    RequestDevice(String),
    /// The device ran out of memory.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// A validation error (a shader, pipeline or buffer the device rejected).
    #[error("GPU validation error: {0}")]
    Validation(String),
    /// An internal error of the device or driver.
    #[error("GPU internal error: {0}")]
    Internal(String),
    /// The device was lost (driver reset, `destroy`, …).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// Reading the result back failed.
    #[error("GPU read-back failed: {0}")]
    Readback(String),
    /// The phrase is larger than the device can bind.
    #[error("phrase needs a {bytes}-byte output buffer; the device binds at most {limit}")]
    TooLarge {
        /// Bytes needed.
        bytes: u64,
        /// The device's storage binding limit.
        limit: u64,
    },
}

impl From<wgpu::Error> for GpuError {
    fn from(e: wgpu::Error) -> Self {
        match e {
            wgpu::Error::OutOfMemory { .. } => Self::OutOfMemory(e.to_string()),
            wgpu::Error::Validation { description, .. } => Self::Validation(description),
            wgpu::Error::Internal { description, .. } => Self::Internal(description),
        }
    }
}

/// Which device to use, from `AURALIS_RENDERER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RendererChoice {
    /// The GPU when a hardware adapter exists, else the CPU (the default). A
    /// software adapter (lavapipe) is slower than the CPU path, so `auto` skips it.
    #[default]
    Auto,
    /// The GPU, software adapters included; a missing adapter is logged as an
    /// error and the CPU is used.
    Gpu,
    /// Always the CPU.
    Cpu,
}

/// An unknown `AURALIS_RENDERER` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AURALIS_RENDERER must be auto, gpu or cpu, got {0:?}")]
pub struct RendererChoiceError(pub String);

impl std::str::FromStr for RendererChoice {
    type Err = RendererChoiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            _ => Err(RendererChoiceError(s.to_owned())),
        }
    }
}

impl RendererChoice {
    /// Name of the environment variable read by [`RendererChoice::from_env`].
    pub const ENV: &'static str = "AURALIS_RENDERER";

    /// The choice in `AURALIS_RENDERER` (unset: [`RendererChoice::Auto`]).
    ///
    /// # Errors
    /// [`RendererChoiceError`] for a value other than auto, gpu or cpu.
    pub fn from_env() -> Result<Self, RendererChoiceError> {
        match std::env::var(Self::ENV) {
            Ok(v) => v.parse(),
            Err(std::env::VarError::NotPresent) => Ok(Self::Auto),
            Err(std::env::VarError::NotUnicode(v)) => {
                Err(RendererChoiceError(v.to_string_lossy().into_owned()))
            }
        }
    }
}

/// A device and queue, with the flags its callbacks raise.
#[derive(Debug)]
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// The adapter's name and backend, for logs and status.
    pub adapter_name: String,
    /// Whether the adapter is a software driver rendering on the CPU (lavapipe).
    pub software: bool,
    lost: Arc<AtomicBool>,
    lost_reason: Arc<Mutex<String>>,
    uncaptured: Arc<Mutex<Option<GpuError>>>,
}

/// Where a Linux machine shows a usable GPU: DRM render nodes (Mesa's and
/// NVIDIA's drivers), NVIDIA's own nodes, and WSL's GPU bridge.
const GPU_DEVICE_NODES: [&str; 3] = ["/dev/dri/renderD*", "/dev/nvidia*", "/dev/dxg"];

/// Whether the machine may have a hardware GPU. Only Linux is checked (elsewhere
/// the answer is always yes): there, a GPU the process can use has a device node.
fn gpu_device_node_present() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let listed = |dir: &str, prefix: &str| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
        })
    };
    listed("/dev/dri", "renderD") || listed("/dev", "nvidia") || listed("/dev", "dxg")
}

impl GpuContext {
    /// Finds an adapter (high performance preferred, software adapters accepted)
    /// and opens a device with default limits.
    ///
    /// # Errors
    /// [`GpuError::NoAdapter`] or [`GpuError::RequestDevice`].
    pub fn new() -> Result<Self, GpuError> {
        Self::open(true)
    }

    /// Like [`GpuContext::new`], but with `accept_software` false a software
    /// adapter (a driver rendering on the CPU, such as lavapipe) counts as none:
    /// it renders textures several times slower than the CPU path while taking
    /// every core, so `auto` only wants real GPUs.
    ///
    /// # Errors
    /// [`GpuError::NoAdapter`] (also for a refused software adapter) or
    /// [`GpuError::RequestDevice`].
    pub fn open(accept_software: bool) -> Result<Self, GpuError> {
        if !accept_software && !gpu_device_node_present() {
            // Enumerating adapters loads every installed Vulkan driver, and a
            // software one (lavapipe, with LLVM) stays mapped: about 50 MiB
            // resident for a server that then renders on the CPU anyway.
            return Err(GpuError::NoAdapter(format!(
                "no GPU device node ({}), so no hardware adapter",
                GPU_DEVICE_NODES.join(", ")
            )));
        }
        let instance = wgpu::Instance::new(&wgpu::InstanceDescriptor::from_env_or_default());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let adapter_name = format!("{} ({:?})", info.name, info.backend);
        let software = info.device_type == wgpu::DeviceType::Cpu;
        if software && !accept_software {
            return Err(GpuError::NoAdapter(format!(
                "only a software adapter, {adapter_name}, which is slower than the CPU path"
            )));
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("auralis texture device"),
            required_features: wgpu::Features::empty(),
            required_limits: adapter.limits(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let lost = Arc::new(AtomicBool::new(false));
        let lost_reason = Arc::new(Mutex::new(String::new()));
        let (flag, reason) = (Arc::clone(&lost), Arc::clone(&lost_reason));
        device.set_device_lost_callback(move |why, message| {
            *reason.lock().unwrap_or_else(PoisonError::into_inner) = format!("{why:?}: {message}");
            flag.store(true, Ordering::Release);
        });
        let uncaptured = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Box::new(move |e| {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(GpuError::from(e));
            }
        }));
        Ok(Self {
            device,
            queue,
            adapter_name,
            software,
            lost,
            lost_reason,
            uncaptured,
        })
    }

    /// Whether the device has been lost.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Destroys the device for real (fault injection: a genuine device loss).
    pub fn destroy_device(&self) {
        self.device.destroy();
    }

    /// The device-lost error, if the device is lost, else the first uncaptured
    /// error since the last call.
    fn take_failure(&self) -> Option<GpuError> {
        if self.is_lost() {
            let why = self
                .lost_reason
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            return Some(GpuError::DeviceLost(why));
        }
        self.uncaptured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The uniform both kernels read (their `Params` struct): sizes and the constants
/// shared with Rust.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct ParamsUniform {
    /// Output frames.
    pub frames: u32,
    /// Voices in use.
    pub voice_count: u32,
    /// Grains in use.
    pub grain_count: u32,
    /// Longest grain, in frames.
    pub max_grain_frames: u32,
    /// Frames per dispatch row (workgroups in x × [`WORKGROUP_SIZE`]).
    pub row_frames: u32,
    /// [`PHASE_SCALE`].
    pub phase_scale: f32,
    /// Padding.
    pub pad: [u32; 2],
    /// [`SIN_COEFS`], padded to two `vec4`s.
    pub sin_coefs: [f32; 8],
}

/// A storage buffer that grows (by doubling) when a phrase needs more.
#[derive(Debug)]
struct GrowBuffer {
    buffer: wgpu::Buffer,
    bytes: u64,
    label: &'static str,
    usage: wgpu::BufferUsages,
}

impl GrowBuffer {
    fn new(
        device: &wgpu::Device,
        label: &'static str,
        usage: wgpu::BufferUsages,
        bytes: u64,
    ) -> Self {
        let bytes = bytes.max(256);
        Self {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            }),
            bytes,
            label,
            usage,
        }
    }

    /// Makes room for `bytes`; true when the buffer was replaced.
    fn ensure(&mut self, device: &wgpu::Device, bytes: u64) -> bool {
        if bytes <= self.bytes {
            return false;
        }
        *self = Self::new(device, self.label, self.usage, bytes.next_power_of_two());
        true
    }
}

/// The buffers one render uses.
#[derive(Debug)]
struct Buffers {
    params: wgpu::Buffer,
    voices: GrowBuffer,
    partials: GrowBuffer,
    grains: GrowBuffer,
    out: GrowBuffer,
    readback: GrowBuffer,
    pad_group: wgpu::BindGroup,
    grain_group: wgpu::BindGroup,
}

/// The texture kernels on one device, with their pipelines and buffers.
#[derive(Debug)]
pub struct GpuRenderer {
    ctx: GpuContext,
    pad_layout: wgpu::BindGroupLayout,
    grain_layout: wgpu::BindGroupLayout,
    pad_pipeline: wgpu::ComputePipeline,
    grain_pipeline: wgpu::ComputePipeline,
    buffers: Buffers,
}

/// A bind group layout entry for a compute-stage buffer.
fn layout_entry(binding: u32, ty: wgpu::BufferBindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

const READ_ONLY: wgpu::BufferBindingType = wgpu::BufferBindingType::Storage { read_only: true };
const READ_WRITE: wgpu::BufferBindingType = wgpu::BufferBindingType::Storage { read_only: false };

/// Runs `f` inside out-of-memory, validation and internal error scopes and returns
/// the first error any of them caught.
fn scoped<T>(device: &wgpu::Device, f: impl FnOnce() -> T) -> Result<T, GpuError> {
    device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    device.push_error_scope(wgpu::ErrorFilter::Validation);
    device.push_error_scope(wgpu::ErrorFilter::Internal);
    let value = f();
    let internal = pollster::block_on(device.pop_error_scope());
    let validation = pollster::block_on(device.pop_error_scope());
    let oom = pollster::block_on(device.pop_error_scope());
    match oom.or(validation).or(internal) {
        Some(e) => Err(GpuError::from(e)),
        None => Ok(value),
    }
}

/// The pad kernel: the shared prelude, then the kernel.
const PAD_SOURCE: &str = concat!(
    include_str!("../../../shaders/common.wgsl"),
    include_str!("../../../shaders/texture_pad.wgsl")
);
/// The grain kernel: the shared prelude, then the kernel.
const GRAIN_SOURCE: &str = concat!(
    include_str!("../../../shaders/common.wgsl"),
    include_str!("../../../shaders/texture_grains.wgsl")
);

impl GpuRenderer {
    /// Compiles the kernels and builds the pipelines and first buffers on `ctx`.
    ///
    /// # Errors
    /// Any error the device reports while building them.
    pub fn new(ctx: GpuContext) -> Result<Self, GpuError> {
        Self::build(ctx, false)
    }

    /// [`GpuRenderer::new`]; with `broken_shader` (fault injection) the pad kernel
    /// is compiled from invalid WGSL, a genuine shader validation error.
    pub(crate) fn build(ctx: GpuContext, broken_shader: bool) -> Result<Self, GpuError> {
        let device = &ctx.device;
        let pad_source = if broken_shader {
            concat!(
                include_str!("../../../shaders/common.wgsl"),
                include_str!("../../../shaders/texture_pad.wgsl"),
                "\nfn broken( {"
            )
            .into()
        } else {
            PAD_SOURCE.into()
        };
        let built = scoped(device, || {
            let pad_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("texture_pad.wgsl"),
                source: wgpu::ShaderSource::Wgsl(pad_source),
            });
            let grain_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("texture_grains.wgsl"),
                source: wgpu::ShaderSource::Wgsl(GRAIN_SOURCE.into()),
            });
            let uniform = wgpu::BufferBindingType::Uniform;
            let pad_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("texture pad bind group layout"),
                entries: &[
                    layout_entry(0, uniform),
                    layout_entry(1, READ_ONLY),
                    layout_entry(2, READ_ONLY),
                    layout_entry(3, READ_WRITE),
                ],
            });
            let grain_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("texture grains bind group layout"),
                entries: &[
                    layout_entry(0, uniform),
                    layout_entry(1, READ_ONLY),
                    layout_entry(2, READ_WRITE),
                ],
            });
            let constants = [("WG_SIZE", f64::from(WORKGROUP_SIZE))];
            let pipeline = |label: &'static str,
                            layout: &wgpu::BindGroupLayout,
                            module: &wgpu::ShaderModule| {
                let pipeline_layout =
                    device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some(label),
                        bind_group_layouts: &[layout],
                        push_constant_ranges: &[],
                    });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(label),
                    layout: Some(&pipeline_layout),
                    module,
                    entry_point: Some("main"),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
            };
            let pad_pipeline = pipeline("texture pad pipeline", &pad_layout, &pad_module);
            let grain_pipeline = pipeline("texture grains pipeline", &grain_layout, &grain_module);
            let buffers = Self::make_buffers(device, &pad_layout, &grain_layout);
            (
                pad_layout,
                grain_layout,
                pad_pipeline,
                grain_pipeline,
                buffers,
            )
        })?;
        if let Some(e) = ctx.take_failure() {
            return Err(e);
        }
        let (pad_layout, grain_layout, pad_pipeline, grain_pipeline, buffers) = built;
        Ok(Self {
            ctx,
            pad_layout,
            grain_layout,
            pad_pipeline,
            grain_pipeline,
            buffers,
        })
    }

    /// The adapter's name and backend.
    #[must_use]
    pub fn adapter_name(&self) -> &str {
        &self.ctx.adapter_name
    }

    /// The device and its flags.
    #[must_use]
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    fn make_buffers(
        device: &wgpu::Device,
        pad_layout: &wgpu::BindGroupLayout,
        grain_layout: &wgpu::BindGroupLayout,
    ) -> Buffers {
        use wgpu::BufferUsages as U;
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("texture params uniform"),
            size: size_of::<ParamsUniform>() as u64,
            usage: U::UNIFORM | U::COPY_DST,
            mapped_at_creation: false,
        });
        let storage_in = U::STORAGE | U::COPY_DST;
        let voices = GrowBuffer::new(device, "texture voices", storage_in, 4096);
        let partials = GrowBuffer::new(device, "texture partials", storage_in, 65_536);
        let grains = GrowBuffer::new(device, "texture grains", storage_in, 16_384);
        let out = GrowBuffer::new(device, "texture output", U::STORAGE | U::COPY_SRC, 1 << 20);
        let readback = GrowBuffer::new(
            device,
            "texture readback",
            U::MAP_READ | U::COPY_DST,
            1 << 20,
        );
        let storage = [
            &voices.buffer,
            &partials.buffer,
            &grains.buffer,
            &out.buffer,
        ];
        let (pad_group, grain_group) =
            Self::bind_groups(device, pad_layout, grain_layout, &params, storage);
        Buffers {
            params,
            voices,
            partials,
            grains,
            out,
            readback,
            pad_group,
            grain_group,
        }
    }

    /// The two bind groups; `storage` is voices, partials, grains, output.
    fn bind_groups(
        device: &wgpu::Device,
        pad_layout: &wgpu::BindGroupLayout,
        grain_layout: &wgpu::BindGroupLayout,
        params: &wgpu::Buffer,
        storage: [&wgpu::Buffer; 4],
    ) -> (wgpu::BindGroup, wgpu::BindGroup) {
        let [voices, partials, grains, out] = storage;
        let pad = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("texture pad bind group"),
            layout: pad_layout,
            entries: &[
                entry(0, params),
                entry(1, voices),
                entry(2, partials),
                entry(3, out),
            ],
        });
        let grain = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("texture grains bind group"),
            layout: grain_layout,
            entries: &[entry(0, params), entry(1, grains), entry(2, out)],
        });
        (pad, grain)
    }

    /// Grows the buffers to fit `desc` (rebuilding the bind groups if any moved).
    fn ensure_capacity(&mut self, desc: &TextureDesc, out_bytes: u64) {
        let device = &self.ctx.device;
        let b = &mut self.buffers;
        let mut moved = b
            .voices
            .ensure(device, byte_len::<Voice>(desc.voices.len()));
        moved |= b
            .partials
            .ensure(device, byte_len::<Partial>(desc.partials.len()));
        moved |= b
            .grains
            .ensure(device, byte_len::<Grain>(desc.grains.len()));
        moved |= b.out.ensure(device, out_bytes);
        b.readback.ensure(device, out_bytes);
        if moved {
            let storage = [
                &b.voices.buffer,
                &b.partials.buffer,
                &b.grains.buffer,
                &b.out.buffer,
            ];
            (b.pad_group, b.grain_group) = Self::bind_groups(
                device,
                &self.pad_layout,
                &self.grain_layout,
                &b.params,
                storage,
            );
        }
    }

    /// Renders `desc` on the GPU into the first `desc.frames` frames of `left` and
    /// `right`.
    ///
    /// # Errors
    /// [`GpuError`] for any device failure (the caller falls back on the CPU);
    /// buffers shorter than the phrase give [`GpuError::Readback`].
    pub fn render(
        &mut self,
        desc: &TextureDesc,
        left: &mut [f32],
        right: &mut [f32],
    ) -> Result<(), GpuError> {
        let frames = desc.frames as usize;
        if left.len() < frames || right.len() < frames {
            return Err(GpuError::Readback(format!(
                "destination holds {} frames, phrase {} needs {frames}",
                left.len().min(right.len()),
                desc.phrase_index
            )));
        }
        if let Some(e) = self.ctx.take_failure() {
            return Err(e);
        }
        if frames == 0 {
            return Ok(());
        }
        let out_bytes = 2 * u64::from(desc.frames) * 4;
        let limits = self.ctx.device.limits();
        let limit = u64::from(limits.max_storage_buffer_binding_size).min(limits.max_buffer_size);
        if out_bytes > limit {
            return Err(GpuError::TooLarge {
                bytes: out_bytes,
                limit,
            });
        }
        let groups = desc.frames.div_ceil(WORKGROUP_SIZE);
        let groups_x = groups.min(limits.max_compute_workgroups_per_dimension.max(1));
        let groups_y = groups.div_ceil(groups_x);
        let mut sin_coefs = [0.0_f32; 8];
        sin_coefs[..SIN_COEFS.len()].copy_from_slice(&SIN_COEFS);
        let uniform = ParamsUniform {
            frames: desc.frames,
            voice_count: desc.voices.len() as u32,
            grain_count: desc.grains.len() as u32,
            max_grain_frames: desc.max_grain_frames,
            row_frames: groups_x * WORKGROUP_SIZE,
            phase_scale: PHASE_SCALE,
            pad: [0; 2],
            sin_coefs,
        };
        let device = self.ctx.device.clone();
        scoped(&device, || {
            self.ensure_capacity(desc, out_bytes);
            let (device, queue, b) = (&self.ctx.device, &self.ctx.queue, &self.buffers);
            queue.write_buffer(&b.params, 0, bytemuck::bytes_of(&uniform));
            if !desc.voices.is_empty() {
                queue.write_buffer(&b.voices.buffer, 0, bytemuck::cast_slice(&desc.voices));
            }
            if !desc.partials.is_empty() {
                queue.write_buffer(&b.partials.buffer, 0, bytemuck::cast_slice(&desc.partials));
            }
            if !desc.grains.is_empty() {
                queue.write_buffer(&b.grains.buffer, 0, bytemuck::cast_slice(&desc.grains));
            }
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("texture encoder"),
            });
            for (label, pipeline, group) in [
                ("texture pad pass", &self.pad_pipeline, &b.pad_group),
                ("texture grains pass", &self.grain_pipeline, &b.grain_group),
            ] {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(label),
                    timestamp_writes: None,
                });
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(groups_x, groups_y, 1);
            }
            encoder.copy_buffer_to_buffer(&b.out.buffer, 0, &b.readback.buffer, 0, out_bytes);
            queue.submit(Some(encoder.finish()));
        })?;
        self.read_back(out_bytes, left, right, frames)
    }

    /// Maps the read-back buffer and copies both channels out.
    fn read_back(
        &self,
        out_bytes: u64,
        left: &mut [f32],
        right: &mut [f32],
        frames: usize,
    ) -> Result<(), GpuError> {
        let slice = self.buffers.readback.buffer.slice(..out_bytes);
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            // The receiver waits below; if it has gone, nobody needs the result.
            let _ignored = tx.send(result);
        });
        if let Err(e) = self.ctx.device.poll(wgpu::PollType::Wait) {
            return Err(self
                .ctx
                .take_failure()
                .unwrap_or(GpuError::Readback(e.to_string())));
        }
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(self
                    .ctx
                    .take_failure()
                    .unwrap_or(GpuError::Readback(e.to_string())))
            }
            Err(e) => return Err(GpuError::Readback(e.to_string())),
        }
        {
            let view = slice.get_mapped_range();
            let data: &[f32] = bytemuck::cast_slice(&view);
            left[..frames].copy_from_slice(&data[..frames]);
            right[..frames].copy_from_slice(&data[frames..2 * frames]);
        }
        self.buffers.readback.buffer.unmap();
        match self.ctx.take_failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A bind group entry for a whole buffer.
fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

/// Bytes of `n` values of `T`.
fn byte_len<T>(n: usize) -> u64 {
    (n * size_of::<T>()) as u64
}

/// The GPU context for a test, in this crate's tests and any test suite that
/// drives the GPU path: under `CI=true` a missing adapter fails the test;
/// elsewhere the test is skipped with a printed reason.
///
/// # Panics
/// Under `CI=true` when no adapter is found.
#[must_use]
pub fn test_context() -> Option<GpuContext> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but no GPU adapter (install mesa-vulkan-drivers): {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_refuses_software_adapters_and_gpu_takes_them() {
        let Some(any) = test_context() else { return };
        match GpuContext::open(false) {
            Ok(hardware) => {
                assert!(!any.software, "a hardware GPU is preferred over software");
                assert!(!hardware.software);
            }
            Err(GpuError::NoAdapter(why)) => {
                assert!(any.software, "a hardware adapter was refused: {why}");
                let expected = if gpu_device_node_present() {
                    "software adapter"
                } else {
                    "no GPU device node"
                };
                assert!(why.contains(expected), "{why}");
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    use crate::compose::{ComposeParams, Composer};
    use crate::prerender::cpu::CpuRenderer;
    use crate::prerender::texture::Quality;
    use crate::prerender::validate::error_db;

    fn desc(index: u64, bars: u32, bpm: f32, sr: f32, quality: Quality) -> TextureDesc {
        let params = ComposeParams {
            bars,
            bpm,
            ..ComposeParams::default()
        };
        TextureDesc::build(11, &Composer::new(11, params).seek(index), sr, quality)
    }

    #[test]
    fn gpu_matches_cpu_below_minus_60_dbfs() {
        let Some(ctx) = test_context() else {
            return;
        };
        let mut gpu = GpuRenderer::new(ctx).expect("kernels build");
        let mut cpu = CpuRenderer::new();
        let cases = [
            (0, 1, 120.0, 8_000.0, Quality::FULL),
            (5, 2, 100.0, 12_000.0, Quality::FULL),
            // A smaller phrase after a larger one reuses the grown buffers.
            (9, 1, 140.0, 8_000.0, Quality::FULL.simplified()),
            (2, 2, 90.0, 16_000.0, Quality::FULL),
            (3, 1, 240.0, 48_000.0, Quality::FULL),
        ];
        let mut worst = f64::NEG_INFINITY;
        for (index, bars, bpm, sr, quality) in cases {
            let d = desc(index, bars, bpm, sr, quality);
            let n = d.frames as usize;
            let (mut gl, mut gr) = (vec![9.0; n], vec![9.0; n]);
            let (mut cl, mut cr) = (vec![0.0; n], vec![0.0; n]);
            gpu.render(&d, &mut gl, &mut gr).expect("GPU render");
            cpu.render(&d, &mut cl, &mut cr).expect("CPU render");
            let db = error_db(&gl, &cl).max(error_db(&gr, &cr));
            eprintln!(
                "phrase {index} at {sr} Hz: GPU vs CPU {db:.1} dBFS ({})",
                gpu.adapter_name()
            );
            assert!(db < -60.0, "phrase {index}: GPU vs CPU {db:.1} dBFS");
            worst = worst.max(db);
        }
        eprintln!("worst GPU vs CPU difference: {worst:.1} dBFS");
    }

    #[test]
    fn long_phrase_agrees_to_the_last_frame() {
        // 128 s: far past where f32 time x frequency would lose the phase.
        let Some(ctx) = test_context() else {
            return;
        };
        let mut gpu = GpuRenderer::new(ctx).expect("kernels build");
        let d = desc(1, 16, 30.0, 4_000.0, Quality::FULL);
        let n = d.frames as usize;
        assert_eq!(n, 512_000 + 8_000, "128 s and a 2 s tail");
        let (mut gl, mut gr) = (vec![0.0; n], vec![0.0; n]);
        let (mut cl, mut cr) = (vec![0.0; n], vec![0.0; n]);
        gpu.render(&d, &mut gl, &mut gr).expect("GPU render");
        CpuRenderer::new()
            .render(&d, &mut cl, &mut cr)
            .expect("CPU render");
        let tail = n - n / 10;
        let db = error_db(&gl[tail..], &cl[tail..]).max(error_db(&gr[tail..], &cr[tail..]));
        eprintln!("last 10 % of a 128 s phrase: GPU vs CPU {db:.1} dBFS");
        assert!(db < -60.0, "{db:.1} dBFS");
        assert!(cl[tail..].iter().any(|v| v.abs() > 1e-3), "the tail sounds");
    }

    #[test]
    fn shader_source_is_valid_wgsl_for_naga() {
        // Builds the pipelines; a WGSL error would surface as GpuError::Validation.
        let Some(ctx) = test_context() else {
            return;
        };
        let gpu = GpuRenderer::new(ctx).expect("kernels build");
        assert!(!gpu.adapter_name().is_empty());
    }

    #[test]
    fn renderer_choice_parses_strictly() {
        assert_eq!("auto".parse(), Ok(RendererChoice::Auto));
        assert_eq!(" GPU ".parse(), Ok(RendererChoice::Gpu));
        assert_eq!("cpu".parse(), Ok(RendererChoice::Cpu));
        assert!("cuda".parse::<RendererChoice>().is_err());
    }
}
