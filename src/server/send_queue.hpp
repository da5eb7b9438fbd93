// A connection's outgoing frames: the queue of frames not yet written and the
// batch being written. A batch gathers up to `max_frames` frames (header +
// shared payload each, the payload never copied) into one write, so a
// connection behind on its broadcasts catches up in one syscall instead of
// one per frame. Batches come from a per-thread pool: an idle connection holds
// none, a busy one does not allocate per write.
//
// Thread safety: a queue and its batch belong to one connection's thread; the
// pool is per thread.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>

#include <boost/asio/buffer.hpp>

#include "otsync/doc/types.hpp"
#include "otsync/server/ws_frame.hpp"

namespace otsync::server {

struct outgoing_frame {
  doc::shared_frame payload;
  ws::opcode op = ws::opcode::text;
  bool reply = false;  ///< answers this client's own request (not counted as a slow consumer's backlog)
};

/// What `frame_queue::clear` dropped.
struct dropped_frames {
  std::size_t frames = 0;
  std::size_t bytes = 0;
  std::size_t reply_frames = 0;
  std::size_t reply_bytes = 0;
};

/// FIFO of frames; its storage is freed by `release` (an idle connection keeps none).
class frame_queue {
 public:
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Queued frames that are not broadcasts (replies, pings, pongs, a close): none may wait for a hold.
  [[nodiscard]] std::size_t urgent() const noexcept { return urgent_; }
  [[nodiscard]] outgoing_frame& front() noexcept { return slots_[head_]; }
  void push_back(outgoing_frame frame);
  void pop_front() noexcept;
  /// Drops every frame; returns what was dropped.
  dropped_frames clear() noexcept;
  /// Frees the storage when empty.
  void release() noexcept;

 private:
  std::unique_ptr<outgoing_frame[]> slots_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t urgent_ = 0;
};

/// Frames in one gather write. The buffer list lives here, unchanged until the write completes.
class write_batch {
 public:
  // Asio hands at most 64 buffers to one sendmsg: 32 frames of header + payload.
  static constexpr std::size_t max_frames = 32;
  static constexpr std::size_t max_bytes = 256 * 1024;

  /// Whether `frame` fits (a first frame always does).
  [[nodiscard]] bool fits(const outgoing_frame& frame) const noexcept {
    return frames_ == 0 || (frames_ < max_frames && bytes_ + frame.payload->size() <= max_bytes);
  }
  void add(outgoing_frame frame) noexcept;
  [[nodiscard]] std::span<const boost::asio::const_buffer> buffers() const noexcept {
    return {buffers_.data(), buffer_count_};
  }
  [[nodiscard]] std::size_t frames() const noexcept { return frames_; }
  /// Payload bytes (what the queue limits count).
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  /// Of those, replies to the client's own requests.
  [[nodiscard]] std::size_t reply_frames() const noexcept { return reply_frames_; }
  [[nodiscard]] std::size_t reply_bytes() const noexcept { return reply_bytes_; }
  [[nodiscard]] bool has_close() const noexcept { return has_close_; }
  void clear() noexcept;

 private:
  std::array<doc::shared_frame, max_frames> payloads_;
  std::array<std::array<char, 10>, max_frames> headers_;  // written before use: no zeroing per batch
  std::array<boost::asio::const_buffer, 2 * max_frames> buffers_;
  std::size_t frames_ = 0;
  std::size_t buffer_count_ = 0;
  std::size_t bytes_ = 0;
  std::size_t reply_frames_ = 0;
  std::size_t reply_bytes_ = 0;
  bool has_close_ = false;
};

struct write_batch_release {
  void operator()(write_batch* batch) const noexcept;
};
using write_batch_ptr = std::unique_ptr<write_batch, write_batch_release>;

/// An empty batch, from this thread's pool when it has one.
write_batch_ptr acquire_write_batch();

}  // namespace otsync::server
