// CPU and memory of processes from /proc, and of this process from getrusage.
//
// Thread safety: pure functions reading the kernel's view.
#pragma once

#include <cstdint>
#include <optional>

namespace otsync::load {

/// CPU time of a process in seconds: in user space and in the kernel on its behalf.
struct cpu_seconds {
  double user = 0;
  double system = 0;
  [[nodiscard]] double total() const { return user + system; }
};

/// utime and stime of `pid` (/proc/PID/stat), or nullopt if unreadable.
std::optional<cpu_seconds> process_cpu_seconds(int pid);
/// VmRSS of `pid` in bytes (/proc/PID/status), or nullopt if unreadable.
std::optional<std::uint64_t> process_rss_bytes(int pid);
/// User + system CPU seconds of this process (getrusage(RUSAGE_SELF)).
double self_cpu_seconds();

}  // namespace otsync::load
