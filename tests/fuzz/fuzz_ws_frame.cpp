// libFuzzer target: the WebSocket frame decoder (server/ws_frame.hpp) on a
// hostile client byte stream.
//
// Input: byte 0 picks the decoder's message limit, byte 1 how the stream is
// cut into reads, the rest is the stream. The stream is decoded three ways
// (in one read, in reads cut where byte 1 and the stream's own bytes say,
// and, when short, one byte per read), driven as websocket_session drives
// it. Invariants, each an abort:
//   - `used` never exceeds the bytes given; `need_more` consumes them all;
//     every other event consumes at least one byte (the session's loop ends);
//   - messages are valid UTF-8 no larger than the limit; control payloads
//     fit a control frame (125 bytes, a close reason 123); close codes are
//     ones a peer may send; errors carry one of the codes the decoder uses;
//   - after `error` the decoder stops: every later call consumes its input
//     and reports nothing;
//   - the events (kinds, payloads, codes) do not depend on how the stream was
//     cut into reads.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "otsync/ot/unicode.hpp"
#include "otsync/server/ws_frame.hpp"

namespace {

namespace ws = otsync::server::ws;
using event = ws::frame_decoder::event;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_ws_frame: invariant violated: %s\n", what);
  std::abort();
}

void require(bool condition, const char* what) {
  if (!condition) fail(what);
}

struct decoded {
  event kind;
  std::string payload;
  std::uint16_t code = 0;
  friend bool operator==(const decoded&, const decoded&) = default;
};

bool valid_utf8(std::string_view text) {
  std::size_t code_points = 0;
  return otsync::ot::unicode::validate_utf8(text, code_points) == otsync::ot::unicode::utf8_status::valid;
}

bool valid_close_code(std::uint16_t code) {
  return code == 0 || (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

bool decoder_error_code(std::uint16_t code) {
  return code == ws::close_code::protocol_error || code == ws::close_code::unknown_data ||
         code == ws::close_code::bad_payload || code == ws::close_code::too_big;
}

// Decodes `stream` read by read (`cuts`: the sizes of the reads, cycled),
// as websocket_session::process does; stops reading after a close or an error.
std::vector<decoded> decode(const std::string& stream, std::size_t max_message, const std::vector<std::size_t>& cuts) {
  ws::frame_decoder decoder(max_message);
  std::vector<decoded> out;
  bool failed = false;
  std::size_t start = 0;
  std::size_t next_cut = 0;
  while (start < stream.size()) {
    std::size_t size = cuts.empty() ? stream.size() : cuts[next_cut++ % cuts.size()];
    if (size == 0 || size > stream.size() - start) size = stream.size() - start;
    // A fresh copy per read: the decoder unmasks in place and may return views of it.
    std::string chunk = stream.substr(start, size);
    start += size;
    std::size_t pos = 0;
    while (pos < chunk.size()) {
      const std::size_t given = chunk.size() - pos;
      auto r = decoder.decode(std::span<char>(chunk.data() + pos, given));
      require(r.used <= given, "used exceeds the input");
      pos += r.used;
      if (failed) {
        require(r.kind == event::need_more && r.used == given, "the decoder went on after an error");
        require(decoder.payload().empty(), "a payload after an error");
        continue;
      }
      if (r.kind == event::need_more) {
        require(r.used == given, "need_more left input unconsumed");
        break;
      }
      require(r.used > 0, "an event consumed no input (the session would spin)");
      decoded d{r.kind, std::string(decoder.payload()), 0};
      switch (r.kind) {
        case event::message:
          require(d.payload.size() <= max_message, "a message larger than the limit");
          require(valid_utf8(d.payload), "a message that is not valid UTF-8");
          break;
        case event::ping:
        case event::pong:
          require(d.payload.size() <= 125, "a control payload larger than 125 bytes");
          break;
        case event::close:
          d.code = decoder.close_status();
          require(valid_close_code(d.code), "a close code a peer may not send");
          require(d.payload.size() <= 123, "a close reason larger than 123 bytes");
          require(d.code != 0 || d.payload.empty(), "a close reason without a code");
          require(valid_utf8(d.payload), "a close reason that is not valid UTF-8");
          break;
        case event::error:
          d.code = decoder.error_code();
          d.payload = decoder.error_reason();
          require(decoder_error_code(d.code), "an error without a known close code");
          require(!d.payload.empty() && d.payload.size() <= 123, "an error reason that does not fit a close frame");
          failed = true;
          break;
        case event::need_more:
          break;
      }
      out.push_back(std::move(d));
      if (r.kind == event::close) return out;  // the session reads no further
    }
    if (failed) {
      // The session stops reading after an error; a decoder called anyway stays quiet.
      std::string rest = stream.substr(start);
      auto r = decoder.decode(std::span<char>(rest.data(), rest.size()));
      require(r.kind == event::need_more && r.used == rest.size(), "the decoder went on after an error");
      return out;
    }
    decoder.release_memory();  // as the session does after each read
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // Limits from 0 bytes up, small enough for the fuzzer to cross them.
  const std::size_t max_message = data[0] == 0xFF ? std::size_t{64} << 20U : std::size_t{data[0]} * 64;
  const std::uint8_t split = data[1];
  const std::string stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  const auto whole = decode(stream, max_message, {});

  // Reads of 1 to 16 bytes from a pattern the input chooses.
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < 8; ++i) cuts.push_back(1 + (((split >> (i % 8)) * 7 + i * 3 + split) % 16));
  if (split & 1U) cuts.push_back(split);  // now and then a longer read
  if (decode(stream, max_message, cuts) != whole) fail("events depend on how the stream is split (pattern)");

  if (stream.size() <= 4096 && decode(stream, max_message, {1}) != whole) {
    fail("events depend on how the stream is split (one byte per read)");
  }
  return 0;
}
