// libFuzzer target: a server's message through the client side's decoder
// (protocol/server_message.hpp), as client_core and otsync-load read it.
//
// Input: the text of one frame. Invariants, each an abort:
//   - decode_server_message never throws and never reads past the text;
//   - it accepts only JSON objects (a bounded DOM parse of an accepted text succeeds);
//   - what it reads agrees with the DOM: action, collection, id, version, seq, src;
//   - an op it read itself passes through the codec as the DOM's `op` member does;
//   - the client frames made from what it read (resubmitting the op) are JSON.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/op_json.hpp"
#include "otsync/protocol/server_message.hpp"

namespace {

using nlohmann::json;
namespace protocol = otsync::protocol;

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "invariant violated: %s\ninput: %.*s\n", what, static_cast<int>(text.size()), text.data());
  std::abort();
}

void expect_string_member(const json& dom, const char* name, const std::string& read, std::string_view text) {
  auto it = dom.find(name);
  if (it != dom.end() && it->is_string() && it->get<std::string>() != read) fail(name, text);
}

void expect_uint_member(const json& dom, const char* name, const std::optional<std::uint64_t>& read,
                        std::string_view text) {
  auto it = dom.find(name);
  if (it == dom.end() || !it->is_number_unsigned()) return;
  if (!read || *read != it->get<std::uint64_t>()) fail(name, text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A copy with nothing after it, so ASan sees any read past the end.
  std::string text(reinterpret_cast<const char*>(data), size);
  protocol::server_message message;
  if (!protocol::decode_server_message(text, message)) return 0;
  json dom = protocol::parse_json_bounded(text);
  if (dom.is_discarded() || !dom.is_object()) fail("accepted what is not a JSON object", text);

  expect_string_member(dom, "c", message.c, text);
  expect_string_member(dom, "d", message.d, text);
  expect_string_member(dom, "src", message.src, text);
  expect_uint_member(dom, "v", message.v, text);
  expect_uint_member(dom, "seq", message.seq, text);
  if (message.has_op != dom.contains("op")) fail("op presence", text);
  if (message.has_op && message.op_read) {
    auto from_dom = protocol::op_from_json_unchecked(dom["op"]);
    if (from_dom && *from_dom != message.op) fail("op differs from the DOM's", text);
    std::string frame;
    protocol::encode_submit(frame, protocol::frame_style::otsync, message.c, message.d, message.v.value_or(0),
                            message.seq.value_or(0), message.src, true, message.op);
    if (protocol::parse_json_bounded(frame).is_discarded()) fail("resubmitted op frame is not JSON", frame);
  }
  if (message.has_error) (void)protocol::error_parts(message);
  return 0;
}
