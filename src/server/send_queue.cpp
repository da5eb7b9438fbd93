#include "send_queue.hpp"

#include <utility>
#include <vector>

namespace otsync::server {

namespace {
bool is_urgent(const outgoing_frame& frame) noexcept {
  return frame.reply || frame.op != ws::opcode::text;
}
}  // namespace

void frame_queue::push_back(outgoing_frame frame) {
  if (is_urgent(frame)) ++urgent_;
  if (size_ == capacity_) {
    std::size_t grown = capacity_ ? capacity_ * 2 : 4;
    auto slots = std::make_unique<outgoing_frame[]>(grown);
    for (std::size_t i = 0; i < size_; ++i) slots[i] = std::move(slots_[(head_ + i) % capacity_]);
    slots_ = std::move(slots);
    capacity_ = grown;
    head_ = 0;
  }
  slots_[(head_ + size_) % capacity_] = std::move(frame);
  ++size_;
}

void frame_queue::pop_front() noexcept {
  if (is_urgent(slots_[head_])) --urgent_;
  slots_[head_] = {};
  head_ = (head_ + 1) % capacity_;
  --size_;
}

dropped_frames frame_queue::clear() noexcept {
  dropped_frames dropped;
  while (!empty()) {
    auto size = front().payload->size();
    ++dropped.frames;
    dropped.bytes += size;
    if (front().reply) {
      ++dropped.reply_frames;
      dropped.reply_bytes += size;
    }
    pop_front();
  }
  return dropped;
}

void frame_queue::release() noexcept {
  if (size_ != 0) return;
  slots_.reset();
  capacity_ = 0;
  head_ = 0;
}

void write_batch::add(outgoing_frame frame) noexcept {
  auto& header = headers_[frames_];
  std::size_t header_size = ws::encode_header(frame.op, frame.payload->size(), header);
  buffers_[buffer_count_++] = boost::asio::const_buffer(header.data(), header_size);
  if (!frame.payload->empty()) buffers_[buffer_count_++] = boost::asio::buffer(*frame.payload);
  bytes_ += frame.payload->size();
  if (frame.reply) {
    ++reply_frames_;
    reply_bytes_ += frame.payload->size();
  }
  has_close_ = has_close_ || frame.op == ws::opcode::close;
  payloads_[frames_++] = std::move(frame.payload);
}

void write_batch::clear() noexcept {
  for (std::size_t i = 0; i < frames_; ++i) payloads_[i].reset();
  frames_ = buffer_count_ = bytes_ = reply_frames_ = reply_bytes_ = 0;
  has_close_ = false;
}

namespace {
// Enough for a broadcast to a few hundred connections at once (about 2 KB each); more are freed.
constexpr std::size_t pool_limit = 256;

struct batch_pool {
  std::vector<write_batch*> free;
  ~batch_pool() {
    for (auto* batch : free) delete batch;
  }
};
thread_local batch_pool pool;
}  // namespace

void write_batch_release::operator()(write_batch* batch) const noexcept {
  batch->clear();
  if (pool.free.size() < pool_limit) {
    pool.free.push_back(batch);  // reserved below: never throws
  } else {
    delete batch;
  }
}

write_batch_ptr acquire_write_batch() {
  if (pool.free.empty()) {
    pool.free.reserve(pool_limit);
    return write_batch_ptr(new write_batch);
  }
  auto* batch = pool.free.back();
  pool.free.pop_back();
  return write_batch_ptr(batch);
}

}  // namespace otsync::server
