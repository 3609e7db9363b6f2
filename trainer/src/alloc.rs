//! Host allocator settings for CPU training.
//!
//! libtorch allocates CPU tensors with the C library's `malloc`. glibc serves blocks above its
//! mmap threshold (128 KiB, rising to at most 32 MiB) with fresh `mmap`s and gives them back
//! on `free`, so every training step page-faults and zeroes its activations anew: the same few
//! hundred MiB, every iteration. Keeping freed memory in the heap instead (no mmap for large
//! blocks, no trimming) removes that; measured with `trainer/bench/compare.py` (README, "Trainer
//! speed"), it makes a CPU step about 1.4× faster, in this trainer and in PyTorch alike (PyTorch's
//! tuning guide reaches the same by preloading jemalloc or tcmalloc). The cost: the process keeps
//! its peak heap until it exits. Applies to the whole process; a no-op off glibc.

/// What [`tune_host_malloc`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MallocTuning {
    /// glibc now keeps freed memory for reuse.
    Applied,
    /// Not glibc (or glibc refused a setting): allocation left as it was.
    Unsupported,
}

/// Makes glibc keep large freed blocks for reuse (`M_MMAP_MAX = 0`, `M_TRIM_THRESHOLD` at its
/// largest). Call once, before the first large tensor.
pub fn tune_host_malloc() -> MallocTuning {
    imp::tune()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::MallocTuning;

    #[allow(unsafe_code)]
    pub fn tune() -> MallocTuning {
        // SAFETY: `mallopt` only changes allocator parameters; it is thread-safe in glibc and
        // valid at any time (blocks allocated earlier keep working).
        let ok = unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
        };
        if ok {
            MallocTuning::Applied
        } else {
            MallocTuning::Unsupported
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    use super::MallocTuning;

    pub fn tune() -> MallocTuning {
        MallocTuning::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        assert_eq!(tune_host_malloc(), MallocTuning::Applied);
        // Allocation still works for blocks far above the old mmap threshold.
        let v = vec![1u8; 64 << 20];
        assert_eq!(v.iter().map(|&b| u64::from(b)).sum::<u64>(), 64 << 20);
    }
}
