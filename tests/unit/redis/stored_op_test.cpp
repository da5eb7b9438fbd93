// The stored-op codec (src/redis/stored_op.hpp) writes in one pass the bytes
// the Redis store always wrote (encode the body, parse it, add v/src/seq/ts,
// dump again): checked against that reference on random and awkward ops, so
// data already in Redis and instances of the previous version interoperate.
#include "redis/stored_op.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <variant>

#include <nlohmann/json.hpp>

#include "otsync/protocol/op_json.hpp"
#include "support/random_ops.hpp"

namespace otsync::redis {
namespace {

using nlohmann::json;
using C = ot::component;

// The previous encoder, verbatim in behaviour: nullopt where it failed.
std::optional<std::string> reference_encode(const oplog::op_record& op) {
  const json body = std::visit(
      [](const auto& part) -> json {
        using part_type = std::decay_t<decltype(part)>;
        if constexpr (std::is_same_v<part_type, ot::op>) {
          return json{{"op", protocol::op_to_json(part)}};
        } else if constexpr (std::is_same_v<part_type, oplog::create_body>) {
          return json{{"create", json{{"type", part.type_uri}, {"data", part.data}}}};
        } else {
          return json{{"del", true}};
        }
      },
      op.body);
  try {
    json j = json::parse(body.dump());
    j["v"] = op.version;
    j["src"] = op.src;
    j["seq"] = op.seq;
    j["ts"] = op.timestamp_ms;
    return j.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

oplog::op_record record(oplog::op_body body, std::string src = "client-1", std::uint64_t seq = 7,
                        std::uint64_t version = 41, std::int64_t ts = 1700000000123) {
  return {std::move(src), seq, version, std::move(body), ts};
}

void expect_same_as_reference(const oplog::op_record& op) {
  const auto encoded = encode_stored_op(op);
  const auto expected = reference_encode(op);
  ASSERT_EQ(encoded.has_value(), expected.has_value());
  if (!encoded) return;
  EXPECT_EQ(*encoded, *expected);
  const auto decoded = decode_stored_op(*encoded);
  ASSERT_TRUE(decoded) << *encoded;
  EXPECT_EQ(*decoded, op);
}

TEST(StoredOp, EveryKindOfBodyIsWrittenAsBefore) {
  expect_same_as_reference(record(ot::op{C::skip(3), C::insert("x"), C::erase(2)}));
  expect_same_as_reference(record(ot::op{C::erase("déjà")}));
  expect_same_as_reference(record(oplog::create_body{"http://sharejs.org/types/text-unicode", "héllo 🙂"}));
  expect_same_as_reference(record(oplog::create_body{"http://sharejs.org/types/text-unicode", ""}));
  expect_same_as_reference(record(oplog::delete_body{}));
}

TEST(StoredOp, AwkwardTextAndNumbersAreWrittenAsBefore) {
  std::string controls;
  for (char c = 1; c < 0x20; ++c) controls += c;
  controls += "\"\\/\x7f\u2028\u2029𝄞";
  expect_same_as_reference(record(ot::op{C::insert(controls)}, controls));
  expect_same_as_reference(record(oplog::create_body{controls, controls}));
  expect_same_as_reference(record(oplog::delete_body{}, "", 0, 0, 0));
  expect_same_as_reference(record(oplog::delete_body{}, "s", std::numeric_limits<std::uint64_t>::max(),
                                  std::numeric_limits<std::uint64_t>::max(), std::numeric_limits<std::int64_t>::min()));
  expect_same_as_reference(record(ot::op{C::insert("a")}, "s", 1, 2, -5));
}

TEST(StoredOp, RandomOpsAreWrittenAsBefore) {
  test::random_ops random(test::fuzz_seed(20261205));
  for (int i = 0; i < test::fuzz_iterations(2000); ++i) {
    const std::string doc = random.document(40);
    auto op = record(random.op_for(doc), random.text(8), random.uniform(0, 1u << 20), random.uniform(0, 1u << 30),
                     static_cast<std::int64_t>(random.uniform(0, 1ull << 42)));
    SCOPED_TRACE(*reference_encode(op));
    expect_same_as_reference(op);
  }
}

TEST(StoredOp, InvalidUtf8IsRefusedAsBefore) {
  const std::string bad = "a\xff";
  EXPECT_FALSE(encode_stored_op(record(ot::op{C::insert("x")}, bad)));
  EXPECT_FALSE(encode_stored_op(record(oplog::create_body{"t", bad})));
  EXPECT_FALSE(encode_stored_op(record(oplog::create_body{bad, "d"})));
  EXPECT_FALSE(reference_encode(record(oplog::create_body{"t", bad})));
}

TEST(StoredOp, WhatIsNotAStoredOpDoesNotDecode) {
  for (const char* text : {
           "", "[]", "{}", "not json",
           R"({"op":[1],"seq":1,"src":"a"})",                         // no v
           R"({"op":[1],"v":-1,"seq":1,"src":"a"})",                  // negative version
           R"({"op":[1],"v":1,"seq":1,"src":2})",                     // src not a string
           R"({"op":[1],"del":true,"v":1,"seq":1,"src":"a"})",        // two bodies
           R"({"v":1,"seq":1,"src":"a"})",                            // no body
           R"({"del":false,"v":1,"seq":1,"src":"a"})",                // not a delete
           R"({"create":{"type":"t"},"v":1,"seq":1,"src":"a"})",      // no data
           R"({"op":[null],"v":1,"seq":1,"src":"a"})",                // not an op
           R"({"op":[1],"v":1,"seq":1,"src":"a","ts":"yesterday"})",  // ts not a number
           R"({"op":[1],"v":1,"seq":1,"src":"a","ts":1.7e21})",       // ts beyond int64 (found by fuzz_stored_op)
           R"({"op":[1],"v":1,"seq":1,"src":"a","ts":9223372036854775808})",  // ts just past int64
           R"({"op":[1],"v":1,"seq":1,"src":"a","ts":1.5})",                  // ts not an integer
       }) {
    EXPECT_FALSE(decode_stored_op(text)) << text;
  }
  // Nesting is bounded before anything is built.
  std::string deep =
      R"({"op":[1],"v":1,"seq":1,"src":"a","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(decode_stored_op(deep));
}

TEST(StoredOp, ATimestampIsOptional) {
  auto decoded = decode_stored_op(R"({"del":true,"seq":2,"src":"a","v":3})");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->timestamp_ms, 0);
  EXPECT_EQ(decoded->version, 3U);
}

}  // namespace
}  // namespace otsync::redis
