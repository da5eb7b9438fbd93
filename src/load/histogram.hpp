// A latency histogram with bounded memory: log-linear buckets (64 per power
// of two, so under 1.6% relative error) over microseconds, plus the exact max.
//
// Thread safety: one histogram per thread; `merge` after the threads stopped.
#pragma once

#include <array>
#include <cstdint>

namespace otsync::load {

class histogram {
 public:
  void record(std::uint64_t micros) noexcept {
    ++counts_[index(micros)];
    ++count_;
    if (micros > max_) max_ = micros;
  }
  void merge(const histogram& other) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    if (other.max_ > max_) max_ = other.max_;
  }
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
  /// The value at quantile `q` (0..1), in microseconds: the midpoint of its bucket.
  [[nodiscard]] double quantile(double q) const noexcept;

 private:
  static constexpr unsigned sub_bits = 6;
  static constexpr std::uint64_t sub = std::uint64_t{1} << sub_bits;
  static constexpr std::size_t buckets = (64 - sub_bits + 1) * sub;

  static std::size_t index(std::uint64_t v) noexcept {
    if (v < sub) return static_cast<std::size_t>(v);
    unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));
    unsigned shift = msb - sub_bits;
    return static_cast<std::size_t>((shift + 1) * sub + ((v >> shift) - sub));
  }
  static std::uint64_t lower(std::size_t i) noexcept {
    if (i < sub) return i;
    std::uint64_t shift = i / sub - 1;
    return (sub + i % sub) << shift;
  }
  static std::uint64_t width(std::size_t i) noexcept { return i < sub ? 1 : std::uint64_t{1} << (i / sub - 1); }

  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace otsync::load
