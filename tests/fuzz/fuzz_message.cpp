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
// Deeper trees are compared only through the reply's own parse: nlohmann's
// copy and operator== recurse, and the harness must not crash first.
constexpr std::size_t max_compared_depth = 256;

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

// The reply the agent sends for `raw` with `error` (it moves the request in,
// as here): it must read back as the request plus the error.
void check_error_reply(json raw, const protocol::error_info& error) {
  // A request refused before its tree was built may echo nothing (null): the reply is then just the error.
  require(raw.is_object() || raw.is_null(), "an echoed request that is neither an object nor null");
  bool non_finite = false;
  const std::size_t depth = depth_of(raw, non_finite);
  const std::size_t raw_size = raw.size();
  const bool had_error = raw.contains("error");
  json expected;
  if (depth <= max_compared_depth && !non_finite) {
    expected = raw;
    expected["error"] = {{"code", error.code}, {"message", error.message}};
  }
  const std::string text = protocol::encode_error_reply(std::move(raw), error);
  const json reply = json::parse(text, nullptr, /*allow_exceptions=*/false);
  require(!reply.is_discarded(), "an error reply that is not JSON");
  require(reply.is_object(), "an error reply that is not an object");
  const auto e = reply.find("error");
  require(e != reply.end() && e->is_object() && e->size() == 2, "an error reply without {code, message}");
  require(e->value("code", std::string()) == error.code, "the error reply's code differs");
  require(e->value("message", std::string()) == error.message, "the error reply's message differs");
  require(reply.size() == raw_size + (had_error ? 0 : 1), "the error reply lost or gained fields");
  if (!expected.is_null()) require(reply == expected, "the error reply does not echo the request");
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
  otsync::doc::op_record record;
  record.src = r.src.value_or("0123456789abcdef0123456789abcdef");
  record.seq = r.seq;
  record.version = r.version.value_or(0);
  record.body = r.body;
  const std::string text = protocol::encode_op_message(r.collection, r.id, record);
  const json message = json::parse(text, nullptr, /*allow_exceptions=*/false);
  require(message.is_object(), "a broadcast that is not a JSON object");
  require(message.value("a", std::string()) == "op", "a broadcast without a:op");
  require(message.value("c", std::string()) == r.collection, "a broadcast with another collection");
  require(message.value("d", std::string()) == r.id, "a broadcast with another id");
  require(message.value("src", std::string()) == record.src, "a broadcast with another src");
  require(message.value("seq", std::uint64_t{0}) == record.seq, "a broadcast with another seq");
  require(message.value("v", std::uint64_t{0}) == record.version, "a broadcast with another version");
  auto body = protocol::read_op_body(message);
  const auto* read = std::get_if<otsync::doc::op_body>(&body);
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
    check_error_reply(std::move(rejected->raw), rejected->error);
    return 0;
  }
  auto& request = std::get<protocol::request>(parsed);
  require(request.raw.is_object(), "an accepted request that is not an object");
  const auto a = request.raw.find("a");
  require(a != request.raw.end() && a->is_string() && a->get<std::string>() == request.action,
          "an accepted request whose action is not its `a`");
  std::visit([](const auto& body) { check_body(body); }, request.body);
  // The agent answers accepted requests with errors too (unknown documents, store failures).
  check_error_reply(std::move(request.raw), {"ERR_DATABASE_UNAVAILABLE", "The document store failed: fuzz"});
  return 0;
}
