// libFuzzer target: an op as the Redis store reads it back from a document's
// list or from its pub/sub channel (src/redis/stored_op.hpp). Anyone who can
// write to Redis, or PUBLISH on the channel, chooses these bytes.
//
// Input: one stored op's text. Invariants, each an abort:
//   - decode_stored_op never throws;
//   - a decoded op's edit passes ot::check, and its version and seq fit;
//   - encoding a decoded op and decoding that again gives the same record,
//     and encoding it once more gives the same bytes (the format is stable).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "otsync/ot/text_unicode.hpp"
#include "redis/stored_op.hpp"

namespace {

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "invariant violated: %s\ninput: %.*s\n", what, static_cast<int>(text.size()), text.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto op = otsync::redis::decode_stored_op(text);
  if (!op) return 0;
  if (const auto* edit = std::get_if<otsync::ot::op>(&op->body); edit && otsync::ot::check(*edit)) {
    fail("decoded edit fails ot::check", text);
  }
  auto encoded = otsync::redis::encode_stored_op(*op);
  if (!encoded) return 0;  // text that is not UTF-8 cannot be written back
  auto again = otsync::redis::decode_stored_op(*encoded);
  if (!again) fail("re-encoded op does not decode", *encoded);
  if (!(*again == *op)) fail("re-encoded op decodes differently", *encoded);
  auto twice = otsync::redis::encode_stored_op(*again);
  if (!twice || *twice != *encoded) fail("encoding is not stable", *encoded);
  return 0;
}
