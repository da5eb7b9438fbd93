// libFuzzer target: a client's WebSocket message through the ShareDB message
// codec (protocol/message.hpp), as the agent handles it.
//
// Input: the text of one frame. Invariants, each an abort:
//   - parse_request never throws;
//   - a frame that is not a JSON object is `unreadable` with
//     ERR_MESSAGE_BADLY_FORMED;
//   - a rejected request's error reply (encode_error_reply, the request echoed
//     with `error`) is itself a JSON object carrying exactly that error, and
//     otherwise the request as parsed; the same holds for the error replies
//     the agent sends for accepted requests;
//   - an accepted request's fields are in range: versions and seq below 2^53,
//     ops that pass ot::check, timestamps finite;
//   - an accepted op, written back as the broadcast `encode_op_message`
//     writes, parses to the same collection, id, version, seq, src and body.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/protocol/op_json.hpp"

namespace {

using nlohmann::json;
namespace protocol = otsync::protocol;

constexpr std::uint64_t max_safe_integer = (1ULL << 53U) - 1U;
// An echo is the object, a bulk request's flat `b` in it, and `b`'s scalars (depth_of counts each).
constexpr std::size_t max_echo_depth = 3;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_message: invariant violated: %s\n", what);
  std::abort();
}

void require(bool condition, const char* what) {
  if (!condition) fail(what);
}

// Nesting depth of `root` without recursion; `non_finite` when a number
// would not survive a dump (nlohmann writes infinities as null).
std::size_t depth_of(const json& root, bool& non_finite) {
  std::size_t deepest = 0;
  std::vector<std::pair<const json*, std::size_t>> stack{{&root, 1}};
  while (!stack.empty()) {
    auto [value, depth] = stack.back();
    stack.pop_back();
    deepest = std::max(deepest, depth);
    if (value->is_number_float() && !std::isfinite(value->get<double>())) non_finite = true;
    if (value->is_structured()) {
      for (const auto& child : *value) stack.emplace_back(&child, depth + 1);
    }
  }
  return deepest;
}

// An error reply echoes only the request's addressing fields (scalars) and a
// bulk request's flat `b`: never deeper than two levels, never larger than the
// request it answers (plus the error), whatever the request held.
void check_error_reply(json echo, const protocol::error_info& error, std::size_t frame_size) {
  require(echo.is_object(), "an echo that is not an object");
  for (const auto& [key, value] : echo.items()) {
    if (key == "b") {
      require(value.is_primitive() || value.is_array() || value.is_object(), "an echoed b of another kind");
      if (value.is_structured()) {
        for (const auto& member : value) require(member.is_primitive(), "an echoed b that is nested");
      }
      continue;
    }
    require(key == "a" || key == "c" || key == "d" || key == "v" || key == "src" || key == "seq" || key == "id" ||
                key == "ch" || key == "pv" || key == "error",
            "an echoed field that is not an addressing field");
    require(value.is_primitive(), "an echoed field that is not a scalar");
  }
  bool non_finite = false;
  require(depth_of(echo, non_finite) <= max_echo_depth, "an echo nested deeper than a flat b");
  const std::size_t echo_size = echo.size();
  const bool had_error = echo.contains("error");
  json expected = echo;
  expected["error"] = {{"code", error.code}, {"message", error.message}};
  const std::string text = protocol::encode_error_reply(std::move(echo), error);
  require(text.size() <= frame_size + error.code.size() + error.message.size() + 64,
          "an error reply larger than the request it answers");
  const json reply = json::parse(text, nullptr, /*allow_exceptions=*/false);
  require(!reply.is_discarded(), "an error reply that is not JSON");
  require(reply.is_object(), "an error reply that is not an object");
  const auto e = reply.find("error");
  require(e != reply.end() && e->is_object() && e->size() == 2, "an error reply without {code, message}");
  require(e->value("code", std::string()) == error.code, "the error reply's code differs");
  require(e->value("message", std::string()) == error.message, "the error reply's message differs");
  require(reply.size() == echo_size + (had_error ? 0 : 1), "the error reply lost or gained fields");
  if (!non_finite) require(reply == expected, "the error reply does not echo the request's fields");
}

void check_body(const protocol::doc_request& r) {
  require(!r.version || *r.version <= max_safe_integer, "a version above 2^53 - 1");
}

void check_body(const protocol::bulk_request& r) {
  require(r.map_form ? r.ids.empty() : r.versions.empty(), "a bulk request in both forms");
  for (const auto& [id, version] : r.versions) require(version <= max_safe_integer, "a bulk version above 2^53 - 1");
}

void check_body(const protocol::snapshot_request& r) {
  require(!r.version || *r.version <= max_safe_integer, "a snapshot version above 2^53 - 1");
  require(r.by_timestamp || !r.timestamp_ms, "a timestamp on a fetch by version");
  if (r.timestamp_ms) {
    require(*r.timestamp_ms >= -static_cast<std::int64_t>(max_safe_integer) - 1 &&
                *r.timestamp_ms <= static_cast<std::int64_t>(max_safe_integer),
            "a timestamp beyond 2^53");
  }
}

void check_body(const protocol::submit_request& r) {
  require(!r.version || *r.version <= max_safe_integer, "a submit version above 2^53 - 1");
  require(r.seq < max_safe_integer, "a seq at or above 2^53 - 1");
  require(!r.src || !r.src->empty(), "an empty src kept");
  if (const auto* edit = std::get_if<otsync::ot::op>(&r.body)) {
    require(!otsync::ot::check(*edit), "an accepted op that fails ot::check");
  }
  // The broadcast of this op, as every subscriber would get it.
  otsync::oplog::op_record record;
  record.src = r.src.value_or("0123456789abcdef0123456789abcdef");
  record.seq = r.seq;
  record.version = r.version.value_or(0);
  record.body = r.body;
  const std::string text = protocol::encode_op_message(r.collection, r.id, record, record.src);
  const json message = json::parse(text, nullptr, /*allow_exceptions=*/false);
  require(message.is_object(), "a broadcast that is not a JSON object");
  require(message.value("a", std::string()) == "op", "a broadcast without a:op");
  require(message.value("c", std::string()) == r.collection, "a broadcast with another collection");
  require(message.value("d", std::string()) == r.id, "a broadcast with another id");
  require(message.value("src", std::string()) == record.src, "a broadcast with another src");
  require(message.value("seq", std::uint64_t{0}) == record.seq, "a broadcast with another seq");
  require(message.value("v", std::uint64_t{0}) == record.version, "a broadcast with another version");
  auto body = protocol::read_op_body(message);
  const auto* read = std::get_if<otsync::oplog::op_body>(&body);
  require(read != nullptr, "a broadcast whose body does not read back");
  require(*read == r.body, "a broadcast whose body reads back differently");
}

template <class T>
void check_body(const T&) {}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto parsed = protocol::parse_request(frame);
  if (auto* unreadable = std::get_if<protocol::unreadable_frame>(&parsed)) {
    require(unreadable->error.code == "ERR_MESSAGE_BADLY_FORMED", "an unreadable frame with another code");
    require(!unreadable->error.message.empty(), "an unreadable frame without a message");
    return 0;
  }
  if (auto* rejected = std::get_if<protocol::rejected_request>(&parsed)) {
    require(rejected->error.code.rfind("ERR_", 0) == 0, "a rejection whose code is not ERR_*");
    require(!rejected->error.message.empty(), "a rejection without a message");
    check_error_reply(std::move(rejected->echo), rejected->error, size);
    return 0;
  }
  auto& request = std::get<protocol::request>(parsed);
  require(request.echo.is_object(), "an accepted request whose echo is not an object");
  const auto a = request.echo.find("a");
  require(a != request.echo.end() && a->is_string() && a->get<std::string>() == request.action,
          "an accepted request whose action is not its `a`");
  std::visit([](const auto& body) { check_body(body); }, request.body);
  // The agent answers accepted requests with errors too (unknown documents, store failures).
  check_error_reply(std::move(request.echo), {"ERR_DATABASE_UNAVAILABLE", "The document store failed: fuzz"}, size);
  return 0;
}
