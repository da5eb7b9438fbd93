// RFC 6455 framing without I/O: a streaming decoder of client frames and the
// encoder of frame headers. The WebSocket session feeds it whatever bytes a
// read returned (any split) and writes server frames as header + shared
// payload in one gather write, so a broadcast buffer is never copied.
//
// Thread safety: a decoder belongs to one connection; the free functions are pure.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace otsync::server::ws {

enum class opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

/// Close codes this server sends (RFC 6455 section 7.4.1).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unknown_data = 1003;
inline constexpr std::uint16_t bad_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t try_again_later = 1013;
}  // namespace close_code

/// The largest frame header: 2 bytes, 8 of extended length, 4 of mask.
inline constexpr std::size_t max_header_bytes = 14;

/// Writes the header of an unmasked (server) frame with FIN set; returns its size (2 to 10).
std::size_t encode_header(opcode op, std::uint64_t payload_size, std::array<char, 10>& out) noexcept;

/// A close frame's payload: the code, then `reason` cut to the 123 bytes a
/// control frame leaves (at a UTF-8 boundary).
std::string close_payload(std::uint16_t code, std::string_view reason);

/// Appends one whole frame (clients mask theirs; the tests build client streams with it).
void append_frame(std::string& out, opcode op, bool fin, std::string_view payload,
                  std::optional<std::array<std::uint8_t, 4>> mask = std::nullopt);

/// Decodes client frames: masked, text only (binary is refused with 1003),
/// fragmented messages reassembled, control frames between fragments.
class frame_decoder {
 public:
  enum class event : std::uint8_t {
    need_more,  ///< every byte given was consumed; nothing complete yet
    message,    ///< a whole text message: `payload()`
    ping,       ///< `payload()` is what the pong must carry
    pong,
    close,  ///< the peer's close: `close_status()`, `payload()` its reason
    error,  ///< the connection must close with `error_code()` / `error_reason()`; the decoder stops
  };
  struct result {
    std::size_t used;  ///< bytes of the input consumed
    event kind;
  };

  explicit frame_decoder(std::size_t max_message_bytes) noexcept : max_message_(max_message_bytes) {}

  /// Consumes bytes up to the end of the next event. May unmask `input` in
  /// place: a message wholly inside it is returned as a view of it (no copy).
  /// `payload()` stays valid until the next call or until `input` changes.
  result decode(std::span<char> input);

  [[nodiscard]] std::string_view payload() const noexcept { return payload_; }
  /// The code of a received close (0 when it carried none).
  [[nodiscard]] std::uint16_t close_status() const noexcept { return close_status_; }
  [[nodiscard]] std::uint16_t error_code() const noexcept { return error_code_; }
  [[nodiscard]] std::string_view error_reason() const noexcept { return error_reason_; }
  /// Frees a reassembly buffer left from a large message, if no message is in progress.
  void release_memory() noexcept;
  /// Heap memory held for a message being reassembled (its buffer's capacity; 0 for none).
  [[nodiscard]] std::size_t buffered_bytes() const noexcept {
    return message_.capacity() > std::string().capacity() ? message_.capacity() : 0;
  }
  /// Gives up on the connection's input: frees the reassembly buffer; decoding stops.
  void abandon() noexcept;
  /// A frame or message has begun and not yet ended.
  [[nodiscard]] bool mid_message() const noexcept { return in_message_ || in_payload_ || header_size_ > 0; }

 private:
  result fail(std::size_t used, std::uint16_t code, std::string_view reason);
  /// Validates a complete header in header_; false after `fail`.
  bool start_frame();
  void frame_done() noexcept;

  std::size_t max_message_;
  // The current frame.
  std::array<char, max_header_bytes> header_{};
  std::uint8_t header_size_ = 0;  // bytes of header_ received
  std::uint8_t header_need_ = 2;  // bytes the header has, once known
  bool in_payload_ = false;
  bool fin_ = false;
  opcode op_ = opcode::continuation;
  std::array<std::uint8_t, 4> mask_{};
  std::uint64_t remaining_ = 0;       // payload bytes of the frame still to come
  std::uint64_t frame_received_ = 0;  // payload bytes of the frame already consumed
  std::uint8_t mask_pos_ = 0;
  // The message being reassembled (fragments, or a frame split over reads).
  bool in_message_ = false;  // a text frame without FIN was seen
  std::size_t message_size_ = 0;
  std::string message_;
  // A control frame's payload (at most 125 bytes), gathered across reads.
  std::array<char, 125> control_{};
  std::uint8_t control_size_ = 0;
  // Results.
  std::string_view payload_;
  std::uint16_t close_status_ = 0;
  std::uint16_t error_code_ = 0;
  std::string_view error_reason_;
  bool failed_ = false;
  bool clear_message_ = false;  // the last event was a reassembled message: reset before going on
};

}  // namespace otsync::server::ws
