// What the connections of one run share: the phase, the measured window's
// start, per-thread statistics, and the send times of ops in flight to other
// connections (for delivery latency), keyed by (writer, seq).
//
// Thread safety: `phase` and the window start are atomics; `send_times` is
// sharded under mutexes; a `thread_stats` is written by its I/O thread only
// (its progress counters are atomics the coordinator reads).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "histogram.hpp"

namespace otsync::load {

enum class phase : int { connecting, running, measuring, settling, checking, stopped };

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Counters and histograms of the connections on one I/O thread.
struct thread_stats {
  histogram ack_latency;
  histogram delivery_latency;
  std::uint64_t window_acks = 0;
  std::uint64_t window_deliveries = 0;
  std::map<std::string, std::uint64_t> errors;
  std::atomic<std::uint64_t> acks{0};  ///< all acks, for progress
  std::atomic<std::uint64_t> disconnects{0};
  std::atomic<std::uint64_t> parse_failures{0};
};

/// Send times of ops other connections of this process will receive.
class send_times {
 public:
  static std::uint64_t key(std::uint32_t writer, std::uint64_t seq) noexcept {
    return (std::uint64_t{writer} << 40) | (seq & ((std::uint64_t{1} << 40) - 1));
  }
  void record(std::uint64_t k, std::int64_t sent_ns, std::uint32_t receivers) {
    if (receivers == 0) return;
    auto& s = shard_for(k);
    std::lock_guard lock(s.mutex);
    s.map[k] = entry{sent_ns, receivers};
  }
  /// The send time of `k` for one receiver; forgotten after its last receiver.
  std::optional<std::int64_t> take(std::uint64_t k) {
    auto& s = shard_for(k);
    std::lock_guard lock(s.mutex);
    auto it = s.map.find(k);
    if (it == s.map.end()) return std::nullopt;
    std::int64_t t = it->second.sent_ns;
    if (--it->second.remaining == 0) s.map.erase(it);
    return t;
  }

 private:
  struct entry {
    std::int64_t sent_ns;
    std::uint32_t remaining;
  };
  struct alignas(64) shard {
    std::mutex mutex;
    std::unordered_map<std::uint64_t, entry> map;
  };
  shard& shard_for(std::uint64_t k) noexcept { return shards_[(k ^ (k >> 40) * 0x9E3779B1u) % shards_.size()]; }
  std::array<shard, 64> shards_;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct run_state {
  std::atomic<phase> current{phase::connecting};
  std::atomic<std::int64_t> window_start_ns{0};
  send_times sends;
  /// Connection ids (srcs) of this process's writers → writer index. Filled
  /// before `current` leaves `connecting`, read-only afterwards.
  std::unordered_map<std::string, std::uint32_t, string_hash, std::equal_to<>> writer_index;

  [[nodiscard]] phase get() const noexcept { return current.load(std::memory_order_acquire); }
};

}  // namespace otsync::load
