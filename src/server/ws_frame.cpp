#include "otsync/server/ws_frame.hpp"

#include <algorithm>

#include "otsync/ot/unicode.hpp"

namespace otsync::server::ws {
namespace {

bool valid_utf8(std::string_view text) noexcept {
  std::size_t code_points = 0;
  return ot::unicode::validate_utf8(text, code_points) == ot::unicode::utf8_status::valid;
}

// Codes a peer may send (RFC 6455 7.4; 1004-1006 and 1015 never go on the wire).
bool valid_close_code(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

std::size_t put_length(std::uint8_t flags, std::uint64_t size, char* out) noexcept {
  if (size < 126) {
    out[0] = static_cast<char>(flags | size);
    return 1;
  }
  if (size <= 0xFFFF) {
    out[0] = static_cast<char>(flags | 126);
    out[1] = static_cast<char>(size >> 8);
    out[2] = static_cast<char>(size);
    return 3;
  }
  out[0] = static_cast<char>(flags | 127);
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>(size >> (56 - 8 * i));
  return 9;
}

}  // namespace

std::size_t encode_header(opcode op, std::uint64_t payload_size, std::array<char, 10>& out) noexcept {
  out[0] = static_cast<char>(0x80 | static_cast<std::uint8_t>(op));
  return 1 + put_length(0, payload_size, out.data() + 1);
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  constexpr std::size_t max_reason = 123;
  if (reason.size() > max_reason) {
    std::size_t cut = max_reason;
    // Back off to the start of a code point: a cut reason must stay valid UTF-8.
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  std::string out;
  out.reserve(2 + reason.size());
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code));
  out.append(reason);
  return out;
}

void append_frame(std::string& out, opcode op, bool fin, std::string_view payload,
                  std::optional<std::array<std::uint8_t, 4>> mask) {
  char header[max_header_bytes];
  header[0] = static_cast<char>((fin ? 0x80 : 0) | static_cast<std::uint8_t>(op));
  std::size_t size = 1 + put_length(mask ? 0x80 : 0, payload.size(), header + 1);
  if (mask) {
    for (auto byte : *mask) header[size++] = static_cast<char>(byte);
  }
  out.append(header, size);
  std::size_t start = out.size();
  out.append(payload);
  if (mask) {
    for (std::size_t i = 0; i < payload.size(); ++i)
      out[start + i] = static_cast<char>(out[start + i] ^ (*mask)[i % 4]);
  }
}

void frame_decoder::release_memory() noexcept {
  if (!in_message_ && !in_payload_) std::string().swap(message_);
  clear_message_ = false;
}

void frame_decoder::abandon() noexcept {
  failed_ = true;
  in_message_ = false;
  in_payload_ = false;
  header_size_ = 0;
  payload_ = {};
  std::string().swap(message_);
}

frame_decoder::result frame_decoder::fail(std::size_t used, std::uint16_t code, std::string_view reason) {
  failed_ = true;
  error_code_ = code;
  error_reason_ = reason;
  return {used, event::error};
}

bool frame_decoder::start_frame() {
  auto b0 = static_cast<std::uint8_t>(header_[0]);
  auto b1 = static_cast<std::uint8_t>(header_[1]);
  fin_ = (b0 & 0x80) != 0;
  auto code = static_cast<std::uint8_t>(b0 & 0x0F);
  if ((b0 & 0x70) != 0) return (fail(0, close_code::protocol_error, "reserved bits set"), false);
  if (code > 2 && code != 8 && code != 9 && code != 10) {
    return (fail(0, close_code::protocol_error, "unknown opcode"), false);
  }
  op_ = static_cast<opcode>(code);
  if ((b1 & 0x80) == 0) return (fail(0, close_code::protocol_error, "client frames must be masked"), false);
  std::uint64_t size = b1 & 0x7F;
  std::size_t at = 2;
  if (size == 126) {
    size = (std::uint64_t{static_cast<std::uint8_t>(header_[2])} << 8) | static_cast<std::uint8_t>(header_[3]);
    at = 4;
    if (size < 126) return (fail(0, close_code::protocol_error, "length not minimally encoded"), false);
  } else if (size == 127) {
    size = 0;
    for (std::size_t i = 0; i < 8; ++i) size = (size << 8) | static_cast<std::uint8_t>(header_[2 + i]);
    at = 10;
    if (size >> 63) return (fail(0, close_code::protocol_error, "frame length out of range"), false);
    if (size <= 0xFFFF) return (fail(0, close_code::protocol_error, "length not minimally encoded"), false);
  }
  for (std::size_t i = 0; i < 4; ++i) mask_[i] = static_cast<std::uint8_t>(header_[at + i]);
  mask_pos_ = 0;
  remaining_ = size;
  frame_received_ = 0;
  if (code & 0x8) {
    if (!fin_) return (fail(0, close_code::protocol_error, "fragmented control frame"), false);
    if (size > control_.size()) return (fail(0, close_code::protocol_error, "control frame too large"), false);
    control_size_ = 0;
    return true;
  }
  if (op_ == opcode::continuation && !in_message_) {
    return (fail(0, close_code::protocol_error, "continuation frame without a message"), false);
  }
  if (op_ != opcode::continuation && in_message_) {
    return (fail(0, close_code::protocol_error, "new message inside a fragmented one"), false);
  }
  if (op_ == opcode::binary) return (fail(0, close_code::unknown_data, "binary frames are not supported"), false);
  if (size > max_message_ || message_size_ > max_message_ - size) {
    return (fail(0, close_code::too_big, "message too big"), false);
  }
  message_size_ += size;
  return true;
}

frame_decoder::result frame_decoder::decode(std::span<char> input) {
  payload_ = {};  // also after an error: never a view of an earlier, maybe freed, input
  if (failed_) return {input.size(), event::need_more};
  if (clear_message_) {
    message_.clear();
    clear_message_ = false;
  }
  std::size_t pos = 0;
  for (;;) {
    if (!in_payload_) {
      while (header_size_ < header_need_) {
        if (pos == input.size()) return {pos, event::need_more};
        header_[header_size_++] = input[pos++];
        if (header_size_ == 2) {
          auto b1 = static_cast<std::uint8_t>(header_[1]);
          auto size = b1 & 0x7F;
          header_need_ = static_cast<std::uint8_t>(2 + (size == 126 ? 2 : size == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0));
        }
      }
      if (!start_frame()) return {pos, event::error};
      in_payload_ = true;
    }
    std::size_t available = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - pos));
    char* data = input.data() + pos;
    auto unmask = [&](char* out) {
      for (std::size_t i = 0; i < available; ++i) {
        out[i] = static_cast<char>(data[i] ^ mask_[mask_pos_]);
        mask_pos_ = (mask_pos_ + 1) & 3;
      }
    };
    if (static_cast<std::uint8_t>(op_) & 0x8) {
      unmask(control_.data() + control_size_);
      control_size_ = static_cast<std::uint8_t>(control_size_ + available);
      remaining_ -= available;
      pos += available;
      if (remaining_ > 0) return {pos, event::need_more};
      frame_done();
      std::string_view control(control_.data(), control_size_);
      if (op_ == opcode::ping) {
        payload_ = control;
        return {pos, event::ping};
      }
      if (op_ == opcode::pong) return {pos, event::pong};
      if (control.size() == 1) return fail(pos, close_code::protocol_error, "close frame of one byte");
      close_status_ = 0;
      if (control.size() >= 2) {
        close_status_ = static_cast<std::uint16_t>((static_cast<std::uint8_t>(control[0]) << 8) |
                                                   static_cast<std::uint8_t>(control[1]));
        if (!valid_close_code(close_status_)) return fail(pos, close_code::protocol_error, "invalid close code");
        payload_ = control.substr(2);
        if (!valid_utf8(payload_)) return fail(pos, close_code::bad_payload, "close reason is not valid UTF-8");
      }
      return {pos, event::close};
    }
    if (!in_message_ && fin_ && frame_received_ == 0 && available == remaining_) {
      // The common case: a whole single-frame message inside this read. Unmask in place, no copy.
      unmask(data);
      pos += available;
      std::string_view text(data, available);
      frame_done();
      message_size_ = 0;
      if (!valid_utf8(text)) return fail(pos, close_code::bad_payload, "text message is not valid UTF-8");
      payload_ = text;
      return {pos, event::message};
    }
    std::size_t old = message_.size();
    if (old + available > message_.capacity()) {
      // Doubling (many small fragments cost amortised linear copying), but never past the end of a
      // message's last frame: the partial-message budget counts capacity, and a 2 MiB frame doubled
      // past 2 MiB would hold 4. (A string's own reserve would double regardless.)
      std::size_t capacity = std::max(old + available, 2 * message_.capacity());
      if (fin_) capacity = std::min(capacity, old + remaining_);
      std::string grown;
      grown.reserve(capacity);
      grown.append(message_);
      message_.swap(grown);
    }
    message_.resize(old + available);
    unmask(message_.data() + old);
    remaining_ -= available;
    frame_received_ += available;
    pos += available;
    if (remaining_ > 0) return {pos, event::need_more};
    bool last = fin_;
    frame_done();
    if (!last) {
      in_message_ = true;
      continue;
    }
    in_message_ = false;
    message_size_ = 0;
    clear_message_ = true;
    if (!valid_utf8(message_)) return fail(pos, close_code::bad_payload, "text message is not valid UTF-8");
    payload_ = message_;
    return {pos, event::message};
  }
}

void frame_decoder::frame_done() noexcept {
  header_size_ = 0;
  header_need_ = 2;
  in_payload_ = false;
  remaining_ = 0;
  frame_received_ = 0;
}

}  // namespace otsync::server::ws
