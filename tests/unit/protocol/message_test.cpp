// The ShareDB message codec: every action's parse, every validation error
// (ShareDB 7's codes and messages), lone surrogates, the encoders' exact
// shapes, and a bounded randomised fuzz that must never throw.
#include "otsync/protocol/message.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/op_json.hpp"
#include "support/random_ops.hpp"

namespace otsync::protocol {
namespace {

using nlohmann::json;

constexpr const char* badly = "ERR_MESSAGE_BADLY_FORMED";
constexpr const char* op_badly = "ERR_OT_OP_BADLY_FORMED";
const std::string uri(ot::type_uri);

// Parses `frame`, which must be a valid request; returns it.
request parsed(std::string_view frame) {
  auto result = parse_request(frame);
  auto* req = std::get_if<request>(&result);
  if (req == nullptr) {
    ADD_FAILURE() << "not a request: " << frame;
    if (auto* rejected = std::get_if<rejected_request>(&result)) {
      ADD_FAILURE() << "rejected: " << rejected->error.code << ": " << rejected->error.message;
    }
    return {};
  }
  return std::move(*req);
}

// Parses `frame`, which must be rejected; returns the rejection.
rejected_request rejected(std::string_view frame) {
  auto result = parse_request(frame);
  auto* r = std::get_if<rejected_request>(&result);
  if (r == nullptr) {
    ADD_FAILURE() << "not rejected: " << frame;
    return {};
  }
  return std::move(*r);
}

void expect_rejected(std::string_view frame, std::string_view code, std::string_view message) {
  auto r = rejected(frame);
  EXPECT_EQ(r.error.code, code) << frame;
  EXPECT_EQ(r.error.message, message) << frame;
  // The echo is the request's scalar addressing fields, never its payload.
  EXPECT_EQ(r.echo, echo_fields(json::parse(frame), 1000)) << frame;
}

void expect_unreadable(std::string_view frame) {
  auto result = parse_request(frame);
  auto* u = std::get_if<unreadable_frame>(&result);
  ASSERT_NE(u, nullptr) << frame;
  EXPECT_EQ(u->error.code, badly);
  EXPECT_FALSE(u->error.message.empty());
}

template <class T>
T body_of(std::string_view frame) {
  auto req = parsed(frame);
  auto* body = std::get_if<T>(&req.body);
  if (body == nullptr) {
    ADD_FAILURE() << "unexpected body kind for " << frame;
    return {};
  }
  return std::move(*body);
}

// ---------------------------------------------------------------------------
// Frames that are not JSON objects close the connection.

TEST(ParseRequest, InvalidJsonIsUnreadable) {
  expect_unreadable("");
  expect_unreadable("{");
  expect_unreadable("{\"a\":\"f\",}");
  expect_unreadable("not json");
  expect_unreadable("{\"a\":\"f\"} trailing");
  expect_unreadable("{\"a\":\"\xff\"}");  // invalid UTF-8
}

TEST(ParseRequest, NonObjectsAreUnreadable) {
  expect_unreadable("[]");
  expect_unreadable(R"([{"a":"pp"}])");
  expect_unreadable("42");
  expect_unreadable("-1.5");
  expect_unreadable(R"("pp")");
  expect_unreadable("null");
  expect_unreadable("true");
  auto result = parse_request("[1]");
  EXPECT_EQ(std::get<unreadable_frame>(result).error.message, "Received non-object message");
}

TEST(ParseRequest, UnknownOrMissingActionIsRejectedWithEcho) {
  expect_rejected(R"({"a":"zz"})", badly, "Invalid or unknown message");
  expect_rejected(R"({"a":"zz","c":"docs","x":[1,2]})", badly, "Invalid or unknown message");
  expect_rejected(R"({})", badly, "Invalid or unknown message");
  expect_rejected(R"({"a":5})", badly, "Invalid or unknown message");
  expect_rejected(R"({"a":null})", badly, "Invalid or unknown message");
  expect_rejected(R"({"a":"init"})", badly, "Invalid or unknown message");
}

// ---------------------------------------------------------------------------
// hs

TEST(ParseRequest, Handshake) {
  auto req = parsed(R"({"a":"hs","id":null,"protocol":1,"protocolMinor":2})");
  EXPECT_EQ(req.action, "hs");
  EXPECT_FALSE(std::get<handshake_request>(req.body).id.has_value());
  EXPECT_EQ(body_of<handshake_request>(R"({"a":"hs","id":"abc123"})").id, "abc123");
  EXPECT_FALSE(body_of<handshake_request>(R"({"a":"hs"})").id.has_value());
  EXPECT_FALSE(body_of<handshake_request>(R"({"a":"hs","id":""})").id.has_value());
  EXPECT_FALSE(body_of<handshake_request>(R"({"a":"hs","id":7})").id.has_value());
  EXPECT_EQ(req.echo, json::parse(R"({"a":"hs","id":null})"));
}

// ---------------------------------------------------------------------------
// f / s / u

TEST(ParseRequest, FetchSubscribeUnsubscribe) {
  for (const char* a : {"f", "s", "u"}) {
    const std::string action = a;
    auto req = parsed(R"({"a":")" + action + R"(","c":"docs","d":"d1","v":null})");
    EXPECT_EQ(req.action, action);
    auto body = std::get<doc_request>(req.body);
    EXPECT_EQ(body.collection, "docs");
    EXPECT_EQ(body.id, "d1");
    EXPECT_FALSE(body.version.has_value());
    EXPECT_FALSE(body_of<doc_request>(R"({"a":")" + action + R"(","c":"docs","d":"d1"})").version.has_value());
    EXPECT_EQ(body_of<doc_request>(R"({"a":")" + action + R"(","c":"docs","d":"d1","v":7})").version, 7U);
    EXPECT_EQ(body_of<doc_request>(R"({"a":")" + action + R"(","c":"docs","d":"d1","v":0})").version, 0U);
    // An integral float is a number for JS.
    EXPECT_EQ(body_of<doc_request>(R"({"a":")" + action + R"(","c":"docs","d":"d1","v":3.0})").version, 3U);
    EXPECT_EQ(body_of<doc_request>(R"({"a":")" + action + R"(","c":"docs","d":"d1","v":9007199254740991})").version,
              9007199254740991U);
  }
}

TEST(ParseRequest, CollectionAndIdMustBeSafeStrings) {
  expect_rejected(R"({"a":"f","d":"d1"})", badly, "Invalid collection");
  expect_rejected(R"({"a":"f","c":null,"d":"d1"})", badly, "Invalid collection");
  expect_rejected(R"({"a":"f","c":5,"d":"d1"})", badly, "Invalid collection");
  expect_rejected(R"({"a":"s","c":["docs"],"d":"d1"})", badly, "Invalid collection");
  expect_rejected(R"({"a":"f","c":"__proto__","d":"d1"})", badly, "Invalid collection");
  expect_rejected(R"({"a":"f","c":"constructor","d":"d1"})", badly, "Invalid collection");
  expect_rejected(R"({"a":"f","c":"docs"})", badly, "Invalid id");
  expect_rejected(R"({"a":"f","c":"docs","d":3})", badly, "Invalid id");
  expect_rejected(R"({"a":"s","c":"docs","d":{}})", badly, "Invalid id");
  expect_rejected(R"({"a":"u","c":"docs","d":"__proto__"})", badly, "Invalid id");
  expect_rejected(R"({"a":"f","c":"docs","d":"hasOwnProperty"})", badly, "Invalid id");
  expect_rejected(R"({"a":"op","c":"toString","d":"d1","v":0,"seq":1,"op":[]})", badly, "Invalid collection");
  expect_rejected(R"({"a":"nf","c":"docs","d":"valueOf","v":1,"id":1})", badly, "Invalid id");
  // Names that only look like prototype names are fine.
  EXPECT_EQ(body_of<doc_request>(R"({"a":"f","c":"docs","d":"__proto__x"})").id, "__proto__x");
  EXPECT_EQ(body_of<doc_request>(R"({"a":"f","c":"Constructor","d":""})").collection, "Constructor");
}

TEST(ParseRequest, VersionMustBeANonNegativeSafeInteger) {
  expect_rejected(R"({"a":"f","c":"docs","d":"d1","v":-1})", badly, "Invalid version");
  expect_rejected(R"({"a":"s","c":"docs","d":"d1","v":1.5})", badly, "Invalid version");
  expect_rejected(R"({"a":"f","c":"docs","d":"d1","v":"1"})", badly, "Invalid version");
  expect_rejected(R"({"a":"f","c":"docs","d":"d1","v":true})", badly, "Invalid version");
  expect_rejected(R"({"a":"f","c":"docs","d":"d1","v":[1]})", badly, "Invalid version");
  expect_rejected(R"({"a":"f","c":"docs","d":"d1","v":9007199254740992})", badly, "Invalid version");
  expect_rejected(R"({"a":"f","c":"docs","d":"d1","v":18446744073709551615})", badly, "Invalid version");
  expect_rejected(R"({"a":"f","c":"docs","d":"d1","v":1e300})", badly, "Invalid version");
  expect_rejected(R"({"a":"f","c":"docs","d":"d1","v":-0.5})", badly, "Invalid version");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":-2,"seq":1,"op":["x"]})", badly, "Invalid version");
  expect_rejected(R"({"a":"nf","id":1,"c":"docs","d":"d1","v":2.5})", badly, "Invalid version");
}

// ---------------------------------------------------------------------------
// bf / bs / bu

TEST(ParseRequest, BulkArrayForm) {
  for (const char* a : {"bf", "bs", "bu"}) {
    const std::string action = a;
    auto req = parsed(R"({"a":")" + action + R"(","c":"docs","b":["d1","d2","d3"]})");
    EXPECT_EQ(req.action, action);
    auto body = std::get<bulk_request>(req.body);
    EXPECT_EQ(body.collection, "docs");
    EXPECT_FALSE(body.map_form);
    EXPECT_EQ(body.ids, (std::vector<std::string>{"d1", "d2", "d3"}));
    EXPECT_TRUE(body.versions.empty());
    EXPECT_TRUE(body_of<bulk_request>(R"({"a":")" + action + R"(","c":"docs","b":[]})").ids.empty());
  }
}

TEST(ParseRequest, BulkMapForm) {
  for (const char* a : {"bf", "bs"}) {
    const std::string action = a;
    auto body = body_of<bulk_request>(R"({"a":")" + action + R"(","c":"docs","b":{"d1":3,"d2":0}})");
    EXPECT_TRUE(body.map_form);
    EXPECT_TRUE(body.ids.empty());
    using pair = std::pair<std::string, std::uint64_t>;
    EXPECT_EQ(body.versions, (std::vector<pair>{{"d1", 3}, {"d2", 0}}));
  }
}

TEST(ParseRequest, BulkRejections) {
  expect_rejected(R"({"a":"bs","b":["d1"]})", badly, "Invalid collection");
  expect_rejected(R"({"a":"bs","c":"__proto__","b":["d1"]})", badly, "Invalid collection");
  expect_rejected(R"({"a":"bs","c":"docs"})", badly, "Invalid bulk subscribe data");
  expect_rejected(R"({"a":"bf","c":"docs","b":null})", badly, "Invalid bulk subscribe data");
  expect_rejected(R"({"a":"bf","c":"docs","b":"d1"})", badly, "Invalid bulk subscribe data");
  expect_rejected(R"({"a":"bf","c":"docs","b":5})", badly, "Invalid bulk subscribe data");
  expect_rejected(R"({"a":"bu","c":"docs","b":{"d1":1}})", badly, "Invalid bulk subscribe data");
  expect_rejected(R"({"a":"bs","c":"docs","b":["d1",2]})", badly, "Invalid id");
  expect_rejected(R"({"a":"bs","c":"docs","b":["d1",null]})", badly, "Invalid id");
  expect_rejected(R"({"a":"bu","c":"docs","b":["constructor"]})", badly, "Invalid id");
  expect_rejected(R"({"a":"bs","c":"docs","b":{"__proto__":1}})", badly, "Invalid id");
  expect_rejected(R"({"a":"bs","c":"docs","b":{"d1":-1}})", badly, "Invalid version");
  expect_rejected(R"({"a":"bf","c":"docs","b":{"d1":"1"}})", badly, "Invalid version");
  expect_rejected(R"({"a":"bf","c":"docs","b":{"d1":null}})", badly, "Invalid version");
  expect_rejected(R"({"a":"bf","c":"docs","b":{"d1":1.5}})", badly, "Invalid version");
}

// ---------------------------------------------------------------------------
// op

TEST(ParseRequest, EditOp) {
  auto req = parsed(R"({"a":"op","c":"docs","d":"d1","v":4,"seq":2,"x":{},"op":[3,"hé😀",{"d":2}]})");
  EXPECT_EQ(req.action, "op");
  auto body = std::get<submit_request>(req.body);
  EXPECT_EQ(body.collection, "docs");
  EXPECT_EQ(body.id, "d1");
  EXPECT_EQ(body.version, 4U);
  EXPECT_EQ(body.seq, 2U);
  EXPECT_FALSE(body.src.has_value());
  ASSERT_TRUE(std::holds_alternative<ot::op>(body.body));
  EXPECT_EQ(op_to_json(std::get<ot::op>(body.body)), json::parse(R"([3,"hé😀",{"d":2}])"));
}

TEST(ParseRequest, EmptyEditIsAValidNoOp) {
  auto body = body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":4,"seq":2,"op":[]})");
  ASSERT_TRUE(std::holds_alternative<ot::op>(body.body));
  EXPECT_EQ(std::get<ot::op>(body.body).size(), 0U);
}

TEST(ParseRequest, ResendCarriesSrc) {
  auto body = body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":4,"src":"abc","seq":9,"op":["x"]})");
  EXPECT_EQ(body.src, "abc");
  EXPECT_EQ(body.seq, 9U);
  // A null or empty src means the connection's.
  EXPECT_FALSE(
      body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":4,"src":null,"seq":9,"op":["x"]})").src.has_value());
  EXPECT_FALSE(
      body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":4,"src":"","seq":9,"op":["x"]})").src.has_value());
}

TEST(ParseRequest, CreateByNameAndByUri) {
  auto by_name = body_of<submit_request>(
      R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"x":{},"create":{"type":"text-unicode","data":"héllo 😀"}})");
  ASSERT_TRUE(std::holds_alternative<oplog::create_body>(by_name.body));
  EXPECT_EQ(std::get<oplog::create_body>(by_name.body), (oplog::create_body{uri, "héllo 😀"}));
  EXPECT_EQ(by_name.version, 0U);

  auto by_uri = body_of<submit_request>(
      R"({"a":"op","c":"docs","d":"d1","v":null,"seq":1,"create":{"type":"http://sharejs.org/types/text-unicode","data":"x"}})");
  EXPECT_EQ(std::get<oplog::create_body>(by_uri.body), (oplog::create_body{uri, "x"}));
  EXPECT_FALSE(by_uri.version.has_value());

  // No data: an empty document.
  auto empty = body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","seq":1,"create":{"type":"text-unicode"}})");
  EXPECT_EQ(std::get<oplog::create_body>(empty.body), (oplog::create_body{uri, ""}));
  auto null_data =
      body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","seq":1,"create":{"type":"text-unicode","data":null}})");
  EXPECT_EQ(std::get<oplog::create_body>(null_data.body), (oplog::create_body{uri, ""}));
}

TEST(ParseRequest, Delete) {
  auto body = body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":8,"seq":3,"x":{},"del":true})");
  EXPECT_TRUE(std::holds_alternative<oplog::delete_body>(body.body));
  EXPECT_EQ(body.version, 8U);
}

TEST(ParseRequest, SeqRules) {
  const std::string overflow = "ERR_CONNECTION_SEQ_INTEGER_OVERFLOW";
  const std::string overflow_message =
      "Connection seq has exceeded the max safe integer, maybe from being open for too long";
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"op":["x"]})", op_badly,
                  "Both src and seq must be set together");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":null,"op":["x"]})", op_badly,
                  "Both src and seq must be set together");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":"1","op":["x"]})", badly, "Invalid seq");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":true,"op":["x"]})", badly, "Invalid seq");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":[1],"op":["x"]})", badly, "Invalid seq");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1.5,"op":["x"]})", badly, "Invalid seq");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":-1,"op":["x"]})", badly, "Invalid seq");
  // 2^53 - 1 and beyond overflow (ShareDB: seq >= MAX_SAFE_INTEGER).
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":9007199254740991,"op":["x"]})", overflow,
                  overflow_message);
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":9007199254740992,"op":["x"]})", overflow,
                  overflow_message);
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":18446744073709551615,"op":["x"]})", overflow,
                  overflow_message);
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1e300,"op":["x"]})", overflow, overflow_message);
  EXPECT_EQ(body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":9007199254740990,"op":["x"]})").seq,
            9007199254740990U);
  EXPECT_EQ(body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":0,"op":["x"]})").seq, 0U);
}

TEST(ParseRequest, SrcMustBeAString) {
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"src":5,"seq":1,"op":["x"]})", op_badly,
                  "src must be a string");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"src":{},"seq":1,"op":["x"]})", op_badly,
                  "src must be a string");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"src":false,"seq":1,"op":["x"]})", op_badly,
                  "src must be a string");
}

TEST(ParseRequest, OpBodyErrors) {
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1})", badly, "Invalid op message");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":null,"del":null})", badly,
                  "Invalid op message");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":"text-unicode"})", op_badly,
                  "Create data must be an object");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":[1]})", op_badly,
                  "Create data must be an object");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{}})", op_badly, "Missing create type");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{"type":5}})", op_badly,
                  "Missing create type");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{"type":null,"data":"x"}})", op_badly,
                  "Missing create type");
  // json0 (and anything else) is not a type this server knows.
  for (const char* type : {"json0", "http://sharejs.org/types/JSONv0", "text", "http://sharejs.org/types/textv1",
                           "rich-text", "TEXT-UNICODE", "text-unicode "}) {
    const std::string frame =
        R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{"type":")" + std::string(type) + R"(","data":{}}})";
    expect_rejected(frame, "ERR_DOC_TYPE_NOT_RECOGNIZED", "Unknown type");
  }
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{"type":"text-unicode","data":5}})",
                  "ERR_OT_OP_NOT_APPLIED", "Initial data must be a string");
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{"type":"text-unicode","data":["x"]}})",
                  "ERR_OT_OP_NOT_APPLIED", "Initial data must be a string");
  for (const char* del : {"false", "1", "\"true\"", "{}", "[]", "0"}) {
    const std::string frame = R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"del":)" + std::string(del) + "}";
    expect_rejected(frame, op_badly, "del value must be true");
  }
}

TEST(ParseRequest, InvalidTextUnicodeOpsGetTheTypesMessage) {
  auto check = [](const char* op, const char* message) {
    const std::string frame = R"({"a":"op","c":"docs","d":"d1","v":3,"seq":1,"op":)" + std::string(op) + "}";
    expect_rejected(frame, "ERR_OT_OP_NOT_APPLIED", message);
  };
  check(R"([0,"x"])", "Skip components must be >0");
  check(R"([1,1,"x"])", "Adjacent skip components should be combined");
  check(R"(["x",2])", "Op has a trailing skip");
  check(R"([""])", "Inserts cannot be empty");
  check(R"([{"d":0}])", "Deletes must not be empty");
  check(R"([{"x":1}])", "Delete must be number or string");
  check(R"({"d":1})", "Op must be an array of components");
  check(R"("abc")", "Op must be an array of components");
  check("null", "Op must be an array of components");
  check("[null]", "Op components must not be null");
  check("[true]", "Op components must not be booleans");
  check(R"([1.5,"x"])", "Skip and delete lengths must be integers");
}

// ---------------------------------------------------------------------------
// nf / nt

TEST(ParseRequest, SnapshotAtVersion) {
  auto req = parsed(R"({"a":"nf","id":3,"c":"docs","d":"d1","v":5})");
  EXPECT_EQ(req.action, "nf");
  auto body = std::get<snapshot_request>(req.body);
  EXPECT_EQ(body.collection, "docs");
  EXPECT_EQ(body.id, "d1");
  EXPECT_EQ(body.version, 5U);
  EXPECT_FALSE(body.by_timestamp);
  EXPECT_FALSE(body_of<snapshot_request>(R"({"a":"nf","id":3,"c":"docs","d":"d1","v":null})").version.has_value());
  expect_rejected(R"({"a":"nf","id":3,"d":"d1","v":1})", badly, "Invalid collection");
  expect_rejected(R"({"a":"nf","id":3,"c":"docs","v":1})", badly, "Invalid id");
  expect_rejected(R"({"a":"nf","id":3,"c":"docs","d":"d1","v":-1})", badly, "Invalid version");
}

TEST(ParseRequest, SnapshotAtTimestamp) {
  auto body = body_of<snapshot_request>(R"({"a":"nt","id":3,"c":"docs","d":"d1","ts":1700000000123})");
  EXPECT_TRUE(body.by_timestamp);
  EXPECT_EQ(body.timestamp_ms, 1700000000123);
  EXPECT_FALSE(body.version.has_value());
  auto latest = body_of<snapshot_request>(R"({"a":"nt","id":3,"c":"docs","d":"d1","ts":null})");
  EXPECT_TRUE(latest.by_timestamp);
  EXPECT_FALSE(latest.timestamp_ms.has_value());
  EXPECT_EQ(body_of<snapshot_request>(R"({"a":"nt","id":3,"c":"docs","d":"d1","ts":12.9})").timestamp_ms, 12);
  expect_rejected(R"({"a":"nt","id":3,"c":"docs","d":"d1","ts":"yesterday"})", badly, "Invalid timestamp");
  expect_rejected(R"({"a":"nt","id":3,"c":"docs","d":"d1","ts":1e300})", badly, "Invalid timestamp");
  expect_rejected(R"({"a":"nt","id":3,"c":"docs","d":"d1","ts":[1]})", badly, "Invalid timestamp");
  expect_rejected(R"({"a":"nt","id":3,"c":"docs","ts":1})", badly, "Invalid id");
  expect_rejected(R"({"a":"nt","id":3,"d":"d1","ts":1})", badly, "Invalid collection");
}

// ---------------------------------------------------------------------------
// pp, queries, presence

TEST(ParseRequest, Ping) {
  auto req = parsed(R"({"a":"pp"})");
  EXPECT_EQ(req.action, "pp");
  EXPECT_TRUE(std::holds_alternative<ping_request>(req.body));
}

TEST(ParseRequest, QueriesAreRefusedWithACode) {
  for (const char* a : {"qf", "qs"}) {
    const std::string frame = R"({"a":")" + std::string(a) + R"(","id":1,"c":"docs","q":{}})";
    auto req = parsed(frame);
    auto* unsupported = std::get_if<unsupported_request>(&req.body);
    ASSERT_NE(unsupported, nullptr);
    EXPECT_EQ(unsupported->error.code, "ERR_DATABASE_METHOD_NOT_IMPLEMENTED");
    EXPECT_FALSE(unsupported->error.message.empty());
    EXPECT_EQ(req.echo, json::parse(R"({"a":")" + std::string(a) + R"(","id":1,"c":"docs"})"));
  }
  EXPECT_TRUE(std::holds_alternative<query_unsubscribe_request>(parsed(R"({"a":"qu","id":1})").body));
  expect_rejected(R"({"a":"qf","c":"docs","q":{}})", badly, "Missing query ID");
  expect_rejected(R"({"a":"qs","id":"1","c":"docs","q":{}})", badly, "Missing query ID");
  expect_rejected(R"({"a":"qu"})", badly, "Missing query ID");
}

TEST(ParseRequest, PresenceMessages) {
  auto ps = parsed(R"({"a":"ps","ch":"docs.d1","seq":3})");
  ASSERT_TRUE(std::holds_alternative<presence_subscribe_request>(ps.body));
  EXPECT_EQ(std::get<presence_subscribe_request>(ps.body).channel, "docs.d1");
  EXPECT_EQ(std::get<presence_subscribe_request>(ps.body).seq, 3U);
  EXPECT_TRUE(std::get<presence_subscribe_request>(ps.body).subscribe);
  auto pu = parsed(R"({"a":"pu","ch":"docs.d1","seq":4})");
  EXPECT_FALSE(std::get<presence_subscribe_request>(pu.body).subscribe);
  EXPECT_EQ(std::get<presence_resend_request>(parsed(R"({"a":"pr","ch":"x"})").body).channel, "x");
  auto p = parsed(R"({"a":"p","ch":"docs.d1","id":"p1","p":{"index":1,"who":"Ada"},"pv":2,"c":"docs","d":"d1","v":7,)"
                  R"("t":"http://sharejs.org/types/text-unicode"})");
  const auto& update = std::get<presence_update_request>(p.body);
  EXPECT_EQ(update.id, "p1");
  EXPECT_EQ(update.pv, 2U);
  EXPECT_EQ(update.version, 7U);
  EXPECT_EQ(update.collection, "docs");
  EXPECT_EQ(update.doc_id, "d1");
  EXPECT_EQ(update.value, nlohmann::json::parse(R"({"index":1,"who":"Ada"})"));
  // Untyped presence: a channel and an id; pv may be null, p any value.
  auto untyped =
      std::get<presence_update_request>(parsed(R"({"a":"p","ch":"room","id":"me","pv":null,"p":"hi"})").body);
  EXPECT_FALSE(untyped.pv);
  EXPECT_FALSE(untyped.collection);
  EXPECT_EQ(untyped.value, "hi");

  expect_rejected(R"({"a":"ps","ch":5,"seq":1})", badly, "Invalid presence channel");
  expect_rejected(R"({"a":"ps","seq":1})", badly, "Invalid presence channel");
  expect_rejected(R"({"a":"p","ch":"__proto__","id":"p1"})", badly, "Invalid presence channel");
  expect_rejected(R"({"a":"ps","ch":"docs.d1"})", badly, "Invalid seq");
  expect_rejected(R"({"a":"ps","ch":"docs.d1","seq":-1})", badly, "Invalid seq");
  expect_rejected(R"({"a":"p","ch":"docs.d1","pv":0})", badly, "Invalid presence ID");
  expect_rejected(R"({"a":"p","ch":"docs.d1","id":"constructor","pv":0})", badly, "Invalid presence ID");
  expect_rejected(R"({"a":"p","ch":"docs.d1","id":"p1","pv":-2})", badly, "Invalid presence version");
  expect_rejected(R"({"a":"p","ch":"docs.d1","id":"p1","pv":0,"v":"7"})", badly, "Invalid version");
  expect_rejected(R"({"a":"p","ch":"docs.d1","id":"p1","pv":0,"c":5})", badly, "Invalid collection");
  expect_rejected(R"({"a":"p","ch":"docs.d1\u0001","id":"p1","pv":0})", badly,
                  "Invalid presence channel: contains control characters");
}

// ---------------------------------------------------------------------------
// Lone surrogates: JSON.parse takes them, but they are not text.

TEST(ParseRequest, LoneSurrogateInOpIsBadlyFormedAndEchoedWithReplacement) {
  auto r = rejected(R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1,"op":["a\ud800b"]})");
  EXPECT_EQ(r.error.code, op_badly);
  EXPECT_NE(r.error.message.find("lone surrogate"), std::string::npos) << r.error.message;
  // The op itself is not echoed: only the fields the client matches the reply by.
  EXPECT_EQ(r.echo, json::parse(R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1})"));

  auto low =
      rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{"type":"text-unicode","data":"\udc00"}})");
  EXPECT_EQ(low.error.code, op_badly);
  EXPECT_FALSE(low.echo.contains("create"));

  // A high surrogate followed by another high one: both are lone.
  auto two = rejected(R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1,"op":["\uD800\uD801"]})");
  EXPECT_EQ(two.error.code, op_badly);
}

TEST(ParseRequest, LoneSurrogateElsewhereIsMessageBadlyFormed) {
  auto r = rejected(R"({"a":"f","c":"docs","d":"d\udfff1"})");
  EXPECT_EQ(r.error.code, badly);
  EXPECT_EQ(r.echo, json::parse(R"({"a":"f","c":"docs","d":"d\ufffd1"})"));
  auto hs = rejected(R"({"a":"hs","id":"\ud83d"})");
  EXPECT_EQ(hs.error.code, badly);
  EXPECT_EQ(hs.echo["id"], "\xEF\xBF\xBD");
  // In a key (not echoed: only known fields are).
  auto key = rejected(R"({"a":"f","c":"docs","d":"d1","\ud800":1})");
  EXPECT_EQ(key.error.code, badly);
  EXPECT_EQ(key.echo, json::parse(R"({"a":"f","c":"docs","d":"d1"})"));
}

TEST(ParseRequest, EscapedBackslashBeforeSurrogateEscape) {
  // `\\ud800` is a backslash and "ud800": valid text.
  auto ok = body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1,"op":["\\ud800"]})");
  EXPECT_EQ(op_to_json(std::get<ot::op>(ok.body)), json::parse(R"(["\\ud800"])"));
  // `\\\ud800` is a backslash and a lone surrogate.
  auto bad = rejected(R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1,"op":["\\\ud800"]})");
  EXPECT_EQ(bad.error.code, op_badly);
  EXPECT_FALSE(bad.echo.contains("op"));
}

TEST(ParseRequest, ValidSurrogatePairsParse) {
  auto body = body_of<submit_request>(R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1,"op":[2,"\ud83d\ude00!"]})");
  EXPECT_EQ(op_to_json(std::get<ot::op>(body.body)), json::parse("[2,\"\xF0\x9F\x98\x80!\"]"));
  auto create = body_of<submit_request>(
      R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"create":{"type":"text-unicode","data":"\uD834\uDD1E"}})");
  EXPECT_EQ(std::get<oplog::create_body>(create.body).data, "\xF0\x9D\x84\x9E");
}

TEST(ParseRequest, LoneSurrogateInANonObjectOrBrokenFrameIsUnreadable) {
  expect_unreadable(R"(["\ud800"])");
  expect_unreadable(R"("\ud800")");
  expect_unreadable(R"({"a":"op","op":["\ud800"])");
}

// ---------------------------------------------------------------------------
// Encoders

TEST(Encoders, OpMessageAlwaysCarriesSrcAndSeq) {
  oplog::op_record edit{"abc", 5, 6, *op_from_json(json::parse(R"([2,"late"])")), 1234};
  EXPECT_EQ(json::parse(encode_op_message("docs", "d1", edit, edit.src)),
            json::parse(R"({"a":"op","c":"docs","d":"d1","v":6,"src":"abc","seq":5,"op":[2,"late"]})"));

  oplog::op_record anonymous{"", 0, 0, *op_from_json(json::parse(R"(["x"])")), 0};
  auto message = json::parse(encode_op_message("docs", "d1", anonymous, anonymous.src));
  EXPECT_EQ(message, json::parse(R"({"a":"op","c":"docs","d":"d1","v":0,"src":"","seq":0,"op":["x"]})"));

  oplog::op_record create{"s1", 1, 0, oplog::create_body{uri, "héllo 😀"}, 0};
  EXPECT_EQ(json::parse(encode_op_message("docs", "d1", create, create.src)),
            json::parse(R"({"a":"op","c":"docs","d":"d1","v":0,"src":"s1","seq":1,)"
                        R"("create":{"type":"http://sharejs.org/types/text-unicode","data":"héllo 😀"}})"));

  oplog::op_record del{"s1", 3, 8, oplog::delete_body{}, 0};
  EXPECT_EQ(json::parse(encode_op_message("docs", "d1", del, del.src)),
            json::parse(R"({"a":"op","c":"docs","d":"d1","v":8,"src":"s1","seq":3,"del":true})"));

  // No metadata or extra fields on the wire.
  auto wire = json::parse(encode_op_message("docs", "d1", edit, edit.src));
  EXPECT_FALSE(wire.contains("m"));
  EXPECT_FALSE(wire.contains("x"));
  EXPECT_FALSE(wire.contains("ts"));
}

TEST(Encoders, SnapshotJson) {
  oplog::snapshot missing;
  EXPECT_EQ(snapshot_json(missing), json::parse(R"({"v":0,"type":null})"));
  EXPECT_TRUE(snapshot_json(missing).at("type").is_null());
  EXPECT_FALSE(snapshot_json(missing).contains("data"));

  oplog::snapshot deleted{9, std::nullopt, "", std::nullopt};
  EXPECT_EQ(snapshot_json(deleted), json::parse(R"({"v":9,"type":null})"));

  oplog::snapshot live{1, uri, "héllo 😀", oplog::create_record{"s", 1, 0}};
  EXPECT_EQ(snapshot_json(live),
            json::parse(R"({"v":1,"data":"héllo 😀","type":"http://sharejs.org/types/text-unicode"})"));

  oplog::snapshot empty{1, uri, "", std::nullopt};
  EXPECT_EQ(snapshot_json(empty), json::parse(R"({"v":1,"data":"","type":"http://sharejs.org/types/text-unicode"})"));
}

TEST(Encoders, Ack) {
  EXPECT_EQ(json::parse(encode_ack("docs", "d1", "37bc", 2, 1)),
            json::parse(R"({"src":"37bc","seq":2,"v":1,"a":"op","c":"docs","d":"d1"})"));
  auto ack = json::parse(encode_ack("docs", "d1", "37bc", 2, 1));
  EXPECT_FALSE(ack.contains("op"));
  EXPECT_FALSE(ack.contains("create"));
  EXPECT_FALSE(ack.contains("del"));
  EXPECT_EQ(json::parse(encode_ack("c", "d", "s", 9007199254740990U, 9007199254740990U))["seq"], 9007199254740990U);
}

TEST(Encoders, ErrorReplyEchoesTheRequest) {
  auto raw = json::parse(R"({"a":"op","c":"docs","d":"d1","v":9,"seq":1,"x":{},"op":["x"]})");
  auto reply = json::parse(encode_error_reply(raw, {"ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT", "too new"}));
  auto expected = raw;
  expected["error"] = {{"code", "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"}, {"message", "too new"}};
  EXPECT_EQ(reply, expected);

  // The echo of a rejected frame, end to end.
  auto r = rejected(R"({"a":"zz","foo":[1,{"b":null}]})");
  EXPECT_EQ(json::parse(encode_error_reply(r.echo, r.error)),
            json::parse(R"({"a":"zz",)"
                        R"("error":{"code":"ERR_MESSAGE_BADLY_FORMED","message":"Invalid or unknown message"}})"));

  // An existing `error` field in the request is replaced, not duplicated.
  auto with_error = json::parse(R"({"a":"zz","error":"mine"})");
  auto replaced = json::parse(encode_error_reply(with_error, {"C", "M"}));
  EXPECT_EQ(replaced["error"], json::parse(R"({"code":"C","message":"M"})"));

  // Invalid UTF-8 never makes the encoder throw.
  json odd = {{"a", "zz"}, {"c", std::string("\xff\xfe", 2)}};
  EXPECT_NO_THROW((void)encode_error_reply(odd, {"C", "M"}));
}

TEST(Encoders, OpBodyRoundTrip) {
  for (const char* text :
       {R"({"op":[1,"ab",{"d":3}]})", R"({"create":{"type":"http://sharejs.org/types/text-unicode","data":"x"}})",
        R"({"del":true})"}) {
    auto message = json::parse(text);
    auto body = read_op_body(message);
    ASSERT_TRUE(std::holds_alternative<oplog::op_body>(body)) << text;
    json out = json::object();
    write_op_body(out, std::get<oplog::op_body>(body));
    EXPECT_EQ(out, message);
  }
  auto bad = read_op_body(json::parse(R"({"op":[0]})"));
  ASSERT_TRUE(std::holds_alternative<error_info>(bad));
  EXPECT_EQ(std::get<error_info>(bad).code, "ERR_OT_OP_NOT_APPLIED");
}

// The op message and the ack are written without a DOM: byte for byte what
// nlohmann's dump gives, for random ops and names with escapes and bad UTF-8.
TEST(Encoders, DocReplyMatchesTheDomFormByteForByte) {
  const std::vector<std::string> texts{"",
                                       "abc",
                                       "q\"uote\\",
                                       std::string("nul\0x\x01\x1f\x7f\n", 10),
                                       "é😀",
                                       "bad\xff\xc3",
                                       std::string(100000, '\x02')};
  for (const auto& text : texts) {
    for (bool typed : {true, false}) {
      oplog::snapshot snap;
      snap.version = 42;
      if (typed) {
        snap.type_uri = uri;
        snap.data = text;
      }
      for (const char* action : {"f", "s"}) {
        json reference = {{"a", action}, {"c", text}, {"d", "d\n1"}, {"data", snapshot_json(snap)}};
        EXPECT_EQ(encode_doc_reply(action, text, "d\n1", &snap),
                  reference.dump(-1, ' ', false, json::error_handler_t::replace));
      }
    }
  }
  json bare = {{"a", "u"}, {"c", "docs"}, {"d", "x"}};
  EXPECT_EQ(encode_doc_reply("u", "docs", "x", nullptr), bare.dump());
}

TEST(Encoders, DirectEncodersMatchNlohmannByteForByte) {
  auto reference_op = [](std::string_view c, std::string_view d, const oplog::op_record& r) {
    json message = {{"a", "op"}, {"c", c}, {"d", d}, {"v", r.version}, {"src", r.src}, {"seq", r.seq}};
    write_op_body(message, r.body);
    return message.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  auto reference_ack = [](std::string_view c, std::string_view d, std::string_view src, std::uint64_t seq,
                          std::uint64_t v) {
    json message = {{"src", src}, {"seq", seq}, {"v", v}, {"a", "op"}, {"c", c}, {"d", d}};
    return message.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  test::random_ops random(test::fuzz_seed(99));
  const std::vector<std::string> names{"docs",
                                       "",
                                       "q\"uote",
                                       "back\\slash",
                                       std::string("nul\0x", 5),
                                       "ctl\x01\x1f\x7f\b\f\n\r\t",
                                       "é😀",
                                       "bad\xff\xc3",
                                       "\xed\xa0\x80"};
  auto name = [&] { return names[random.uniform(0, names.size() - 1)]; };
  for (int i = 0; i < test::fuzz_iterations(2000); ++i) {
    oplog::op_record r;
    r.src = name();
    r.seq = random.uniform(0, 1) ? random.uniform(0, 100) : random.uniform(0, ~std::uint64_t{0});
    r.version = random.uniform(0, 1u << 30);
    switch (random.uniform(0, 2)) {
      case 0:
        r.body = random.op_for(random.document(20));
        break;
      case 1:
        r.body = oplog::create_body{name(), random.document(10) + name()};
        break;
      default:
        r.body = oplog::delete_body{};
    }
    auto c = name();
    auto d = name();
    ASSERT_EQ(encode_op_message(c, d, r, r.src), reference_op(c, d, r));
    ASSERT_EQ(encode_ack(c, d, r.src, r.seq, r.version), reference_ack(c, d, r.src, r.seq, r.version));
  }
}

// ---------------------------------------------------------------------------
// Randomised: arbitrary and mutated frames never throw, and every outcome can
// be encoded back.

class frame_fuzzer {
 public:
  explicit frame_fuzzer(std::uint64_t seed) : random_(seed) {}

  std::string frame() {
    switch (random_.uniform(0, 3)) {
      case 0:
        return random_value(3).dump();
      case 1:
        return mutate(seeds()[random_.uniform(0, seeds().size() - 1)]);
      case 2:
        return random_message().dump();
      default:
        return random_bytes();
    }
  }

 private:
  static const std::vector<std::string>& seeds() {
    static const std::vector<std::string> all = {
        R"({"a":"hs","id":null,"protocol":1,"protocolMinor":2})",
        R"({"a":"f","c":"docs","d":"d1","v":null})",
        R"({"a":"s","c":"docs","d":"d1","v":3})",
        R"({"a":"u","c":"docs","d":"d1"})",
        R"({"a":"bs","c":"docs","b":["d1","d2"]})",
        R"({"a":"bf","c":"docs","b":{"d1":3,"d2":0}})",
        R"({"a":"bu","c":"docs","b":["d1"]})",
        R"({"a":"op","c":"docs","d":"d1","v":4,"seq":2,"x":{},"op":[3,"h\u00e9\ud83d\ude00",{"d":2}]})",
        R"({"a":"op","c":"docs","d":"d1","v":null,"seq":1,"create":{"type":"text-unicode","data":"x"}})",
        R"({"a":"op","c":"docs","d":"d1","v":8,"src":"abc","seq":3,"del":true})",
        R"({"a":"nf","id":1,"c":"docs","d":"d1","v":2})",
        R"({"a":"nt","id":1,"c":"docs","d":"d1","ts":1700000000000})",
        R"({"a":"qf","id":1,"c":"docs","q":{}})",
        R"({"a":"p","ch":"docs.d1","id":"p","p":null,"pv":0})",
        R"({"a":"pp"})",
    };
    return all;
  }

  json random_scalar() {
    switch (random_.uniform(0, 9)) {
      case 0:
        return nullptr;
      case 1:
        return random_.chance(0.5);
      case 2:
        return static_cast<std::int64_t>(random_.uniform(0, 20)) - 5;
      case 3:
        return random_.uniform(0, UINT64_MAX);
      case 4:
        return static_cast<double>(random_.uniform(0, 1000)) / 7.0;
      case 5:
        return -1e300;
      case 6:
        return random_.text(5);
      case 7: {
        static const char* const names[] = {"__proto__", "constructor", "text-unicode", "docs", "d1", ""};
        return names[random_.uniform(0, 5)];
      }
      default:
        return static_cast<std::uint64_t>(random_.uniform(0, 10));
    }
  }

  json random_value(int depth) {
    if (depth <= 0 || random_.chance(0.5)) return random_scalar();
    if (random_.chance(0.5)) {
      json a = json::array();
      for (auto n = random_.uniform(0, 4); n > 0; --n) a.push_back(random_value(depth - 1));
      return a;
    }
    json o = json::object();
    static const char* const keys[] = {"a", "c",  "d",  "v",    "seq",  "src", "op", "create", "del",
                                       "b", "id", "ts", "type", "data", "ch",  "p",  "q",      "x"};
    for (auto n = random_.uniform(0, 5); n > 0; --n)
      o[keys[random_.uniform(0, std::size(keys) - 1)]] = random_value(depth - 1);
    return o;
  }

  json random_message() {
    static const char* const actions[] = {"hs", "f",  "s",  "u",  "bf", "bs", "bu", "op", "nf", "nt",
                                          "pp", "qf", "qs", "qu", "p",  "ps", "pu", "pr", "zz"};
    json o = random_value(2);
    if (!o.is_object()) o = json::object();
    o["a"] = actions[random_.uniform(0, std::size(actions) - 1)];
    if (random_.chance(0.7)) o["c"] = random_.chance(0.9) ? json("docs") : random_scalar();
    if (random_.chance(0.7)) o["d"] = random_.chance(0.9) ? json("d1") : random_scalar();
    if (random_.chance(0.5)) o["v"] = random_scalar();
    if (random_.chance(0.5)) o["seq"] = random_scalar();
    if (random_.chance(0.4)) o["op"] = random_value(3);
    if (random_.chance(0.2)) o["create"] = random_value(2);
    if (random_.chance(0.2)) o["del"] = random_scalar();
    if (random_.chance(0.3)) o["b"] = random_value(2);
    return o;
  }

  std::string mutate(std::string s) {
    static const char* const insertions[] = {
        "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\", "\"",    "{",    "}",   "[", "]",
        ",",       ":",       "null",           "-",  "1e999", "\xff", "\xc3"};
    for (auto n = random_.uniform(1, 4); n > 0; --n) {
      if (s.empty()) break;
      const auto at = random_.uniform(0, s.size() - 1);
      switch (random_.uniform(0, 3)) {
        case 0:
          s.erase(at, random_.uniform(1, 3));
          break;
        case 1:
          s.insert(at, insertions[random_.uniform(0, std::size(insertions) - 1)]);
          break;
        case 2:
          s[at] = static_cast<char>(random_.uniform(0, 255));
          break;
        default:
          s.resize(at);
          break;
      }
    }
    return s;
  }

  std::string random_bytes() {
    std::string s;
    for (auto n = random_.uniform(0, 40); n > 0; --n) s += static_cast<char>(random_.uniform(0, 255));
    return s;
  }

  test::random_ops random_;
};

// ---------------------------------------------------------------------------
// Hostile input: depth, sizes and counts are bounded before any work is done.

std::string nested(std::size_t depth, std::string_view open, std::string_view close, std::string_view inner = "1") {
  std::string out;
  for (std::size_t i = 0; i < depth; ++i) out += open;
  out += inner;
  for (std::size_t i = 0; i < depth; ++i) out += close;
  return out;
}

TEST(HostileInput, DeepNestingIsRefusedBeforeATreeIsBuilt) {
  const std::string deep_op = R"({"a":"op","c":"docs","d":"d1","seq":1,"op":)" + nested(100000, "[", "]") + "}";
  auto r = rejected(deep_op);
  EXPECT_EQ(r.error.code, badly);
  EXPECT_EQ(r.error.message, "Message nested deeper than 64 levels");
  EXPECT_EQ(r.echo, json::parse(R"({"a":"op","c":"docs","d":"d1","seq":1})"));
  // The reply is small and shallow, whatever the request.
  EXPECT_LT(encode_error_reply(r.echo, r.error).size(), 200U);

  auto unknown = rejected(R"({"a":"zz","x":)" + nested(100000, "[", "]") + "}");
  EXPECT_EQ(unknown.error.code, badly);
  EXPECT_EQ(unknown.echo, json::parse(R"({"a":"zz"})"));

  auto objects = rejected(nested(100000, R"({"a":)", "}"));
  EXPECT_EQ(objects.error.code, badly);
  EXPECT_EQ(objects.echo, json::object());

  // Deep and not JSON at all: unreadable, as any broken frame.
  EXPECT_TRUE(std::holds_alternative<unreadable_frame>(parse_request(std::string(100000, '['))));
  EXPECT_TRUE(std::holds_alternative<unreadable_frame>(parse_request("[" + nested(100000, "[", "]") + "]")));
  // Brackets inside strings are text, not nesting.
  auto text = parsed(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"op":[")" + std::string(1000, '[') + R"("]})");
  EXPECT_TRUE(std::holds_alternative<submit_request>(text.body));
}

TEST(HostileInput, DepthLimitIsExactAndConfigurable) {
  message_limits limits;
  limits.max_depth = 10;
  // The message object is level 1: nine more levels fit.
  auto fits = parse_request(R"({"a":"pp","x":)" + nested(9, "[", "]") + "}", limits);
  EXPECT_TRUE(std::holds_alternative<request>(fits));
  auto over = parse_request(R"({"a":"pp","x":)" + nested(10, "[", "]") + "}", limits);
  ASSERT_TRUE(std::holds_alternative<rejected_request>(over));
  EXPECT_EQ(std::get<rejected_request>(over).error.message, "Message nested deeper than 10 levels");
}

TEST(HostileInput, WideMessagesAreRefusedBeforeATreeIsBuilt) {
  std::string wide = R"({"a":"pp","c":"docs","x":[)";
  for (int i = 0; i < 60000; ++i) wide += i ? ",[]" : "[]";
  wide += "]}";
  auto r = rejected(wide);
  EXPECT_EQ(r.error.code, badly);
  EXPECT_EQ(r.error.message, "Message holds more than 100000 values");
  EXPECT_EQ(r.echo, json::parse(R"({"a":"pp","c":"docs"})"));
  // A top-level object of many members: only the known ones are read to answer it.
  std::string members = R"({"a":"f","c":"docs","d":"d1")";
  for (int i = 0; i < 100000; ++i) members += ",\"k" + std::to_string(i) + "\":0";
  members += "}";
  auto m = rejected(members);
  EXPECT_EQ(m.error.message, "Message holds more than 100000 values");
  EXPECT_EQ(m.echo, json::parse(R"({"a":"f","c":"docs","d":"d1"})"));
  // An op at its component limit still fits.
  std::string op = R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1,"op":[)";
  for (int i = 0; i < 10000; ++i) op += i ? (i % 2 ? R"(,{"d":1})" : ",1") : "1";
  op += "]}";
  auto result = parse_request(op);
  ASSERT_TRUE(std::holds_alternative<rejected_request>(result) || std::holds_alternative<request>(result));
  if (auto* rej = std::get_if<rejected_request>(&result)) {
    EXPECT_NE(rej->error.message, "Message holds more than 100000 values");
  }
  // The scan's count is an upper bound of the values nlohmann builds.
  auto shape = scan_json_shape(R"([1,[2,3],{"a":[]}])", 64, 9);
  EXPECT_TRUE(shape.too_many_values);  // 1 + 2*4 brackets + 4 commas = 13 > 9
  EXPECT_FALSE(scan_json_shape(R"([1,[2,3],{"a":[]}])", 64, 13).too_many_values);
  EXPECT_FALSE(scan_json_shape(R"(["[[[,,,,]]]"])", 64, 3).too_many_values);  // strings are text
}

TEST(HostileInput, IdsAreBoundedAndFreeOfControlCharacters) {
  const std::string ok_id(256, 'x');
  EXPECT_EQ(body_of<doc_request>(R"({"a":"f","c":"docs","d":")" + ok_id + R"("})").id, ok_id);
  expect_rejected(R"({"a":"f","c":"docs","d":")" + ok_id + R"(y"})", badly, "Invalid id: longer than 256 bytes");
  expect_rejected(R"({"a":"s","c":")" + ok_id + R"(y","d":"d1"})", badly, "Invalid collection: longer than 256 bytes");
  expect_rejected(R"({"a":"f","c":"docs","d":"a\u0000b"})", badly, "Invalid id: contains control characters");
  expect_rejected(R"({"a":"f","c":"do\ncs","d":"d1"})", badly, "Invalid collection: contains control characters");
  expect_rejected(R"({"a":"f","c":"docs","d":"\u007f"})", badly, "Invalid id: contains control characters");
  // Non-ASCII text is fine.
  EXPECT_EQ(body_of<doc_request>(R"({"a":"f","c":"docs","d":"caf\u00e9 \ud83d\ude00"})").id, "café 😀");
  expect_rejected(R"({"a":"bf","c":"docs","b":["ok","a\tb"]})", badly, "Invalid id: contains control characters");
  expect_rejected(R"({"a":"bs","c":"docs","b":{")" + ok_id + R"(z":0}})", badly, "Invalid id: longer than 256 bytes");
  // A resend's src is stored and broadcast: bounded too.
  expect_rejected(R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"src":")" + ok_id + R"(z","op":[]})", badly,
                  "Invalid src: longer than 256 bytes");
  // A handshake id that is too long is not adopted (the connection keeps its own).
  EXPECT_FALSE(body_of<handshake_request>(R"({"a":"hs","id":")" + ok_id + R"(z"})").id.has_value());
  EXPECT_FALSE(body_of<handshake_request>(R"({"a":"hs","id":"a\u0001"})").id.has_value());
  EXPECT_EQ(body_of<handshake_request>(R"({"a":"hs","id":")" + ok_id + R"("})").id, ok_id);
}

TEST(HostileInput, BulkRequestsAreBoundedAndDeduplicated) {
  auto bulk = body_of<bulk_request>(R"({"a":"bs","c":"docs","b":["a","b","a","a","c","b"]})");
  EXPECT_EQ(bulk.ids, (std::vector<std::string>{"a", "b", "c"}));
  std::string many = R"({"a":"bf","c":"docs","b":[)";
  for (int i = 0; i < 1001; ++i) many += (i ? ",\"x" : "\"x") + std::to_string(i) + "\"";
  many += "]}";
  auto r = rejected(many);
  EXPECT_EQ(r.error.code, "ERR_BULK_LIMIT_EXCEEDED");
  EXPECT_EQ(r.error.message, "A bulk request may name at most 1000 documents; this one names 1001");
  EXPECT_FALSE(r.echo.contains("b"));  // too long to echo
  // The same document 1001 times is still 1001 names: refused before any work.
  std::string same = R"({"a":"bs","c":"docs","b":[)";
  for (int i = 0; i < 1001; ++i) same += i ? ",\"d\"" : "\"d\"";
  same += "]}";
  EXPECT_EQ(rejected(same).error.code, "ERR_BULK_LIMIT_EXCEEDED");
  // Small enough: echoed, for the client to match the reply.
  auto small = rejected(R"({"a":"bs","c":"docs","b":["ok", 5]})");
  EXPECT_EQ(small.echo["b"], json::parse(R"(["ok",5])"));
}

TEST(HostileInput, OpsAreBoundedInComponentsAndBytes) {
  std::string big = R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1,"op":[)";
  for (int i = 0; i < 10001; ++i) big += (i % 2) ? ",\"x\"" : (i ? ",1" : "1");
  big += "]}";
  auto r = rejected(big);
  EXPECT_EQ(r.error.code, "ERR_OP_TOO_LARGE");
  EXPECT_EQ(r.error.message, "The op has 10001 components; the limit is 10000");
  EXPECT_EQ(r.echo, json::parse(R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1})"));

  message_limits limits;
  limits.max_op_bytes = 1024;
  auto text = [](std::size_t n) { return std::string(n, 'a'); };
  auto check = [&](const std::string& frame, bool ok) {
    auto result = parse_request(frame, limits);
    if (ok) {
      EXPECT_TRUE(std::holds_alternative<request>(result)) << frame.substr(0, 80);
    } else {
      ASSERT_TRUE(std::holds_alternative<rejected_request>(result)) << frame.substr(0, 80);
      EXPECT_EQ(std::get<rejected_request>(result).error.code, "ERR_OP_TOO_LARGE");
    }
  };
  const std::string head = R"({"a":"op","c":"docs","d":"d1","v":1,"seq":1,)";
  check(head + R"("op":[")" + text(1024) + R"("]})", true);
  check(head + R"("op":[")" + text(1000) + R"(",{"d":")" + text(25) + R"("}]})", false);
  check(head + R"("op":[")" + text(1025) + R"("]})", false);
  check(head + R"("create":{"type":"text-unicode","data":")" + text(1024) + R"("}})", true);
  check(head + R"("create":{"type":"text-unicode","data":")" + text(1025) + R"("}})", false);
}

TEST(HostileInput, NestingDepthScanMatchesTheParsedTree) {
  // The one-pass scan against the depth of the tree nlohmann builds, on random JSON
  // with brackets and escapes inside strings.
  std::mt19937 rng(12345);
  auto random_json = [&](auto& self, int budget) -> std::string {
    switch (rng() % 5) {
      case 0:
        return R"("a[\"{\\")";
      case 1:
        return std::to_string(rng() % 100);
      default:
        break;
    }
    if (budget <= 0) return "null";
    bool array = rng() % 2 == 0;
    std::string out = array ? "[" : "{";
    int n = static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      if (i) out += ",";
      if (!array) out += "\"k]" + std::to_string(i) + "\":";
      out += self(self, budget - 1);
    }
    return out + (array ? "]" : "}");
  };
  auto depth_of = [](const json& root) {
    std::size_t deepest = 0;
    std::vector<std::pair<const json*, std::size_t>> stack{{&root, 0}};
    while (!stack.empty()) {
      auto [value, depth] = stack.back();
      stack.pop_back();
      if (!value->is_structured()) continue;
      deepest = std::max(deepest, depth + 1);
      for (const auto& child : *value) stack.emplace_back(&child, depth + 1);
    }
    return deepest;
  };
  for (int i = 0; i < 2000; ++i) {
    auto text = random_json(random_json, 12);
    auto depth = depth_of(json::parse(text));
    constexpr std::size_t any = static_cast<std::size_t>(-1);
    EXPECT_FALSE(scan_json_shape(text, depth, any).too_deep) << text;
    if (depth > 0) {
      EXPECT_TRUE(scan_json_shape(text, depth - 1, any).too_deep) << text;
    }
    EXPECT_EQ(parse_json_bounded(text, depth), json::parse(text));
  }
}

TEST(ParseRequestFuzz, RandomAndMutatedFramesNeverThrow) {
  const auto seed = test::fuzz_seed(20240604);
  const int iterations = test::fuzz_iterations(20000);
  frame_fuzzer fuzzer(seed);
  std::size_t requests = 0;
  std::size_t rejections = 0;
  std::size_t unreadable = 0;
  for (int i = 0; i < iterations; ++i) {
    const std::string frame = fuzzer.frame();
    parse_result result;
    ASSERT_NO_THROW(result = parse_request(frame)) << "seed " << seed << " iteration " << i << ": " << frame;
    if (auto* req = std::get_if<request>(&result)) {
      ++requests;
      ASSERT_TRUE(req->echo.is_object());
      ASSERT_NO_THROW((void)encode_error_reply(req->echo, {"C", "M"}));
      if (auto* op = std::get_if<submit_request>(&req->body)) {
        oplog::op_record record{op->src.value_or("x"), op->seq, op->version.value_or(0), op->body, 0};
        std::string wire;
        ASSERT_NO_THROW(wire = encode_op_message(op->collection, op->id, record, record.src));
        // What is encoded reads back as the same body.
        auto back = read_op_body(json::parse(wire));
        ASSERT_TRUE(std::holds_alternative<oplog::op_body>(back)) << wire;
        ASSERT_TRUE(std::get<oplog::op_body>(back) == op->body) << wire;
      }
    } else if (auto* r = std::get_if<rejected_request>(&result)) {
      ++rejections;
      ASSERT_TRUE(r->echo.is_object());
      ASSERT_FALSE(r->error.code.empty());
      std::string reply;
      ASSERT_NO_THROW(reply = encode_error_reply(r->echo, r->error));
      // The error reply is itself valid JSON a client can parse.
      ASSERT_TRUE(json::accept(reply)) << reply;
    } else {
      ++unreadable;
    }
  }
  // Every outcome was exercised.
  EXPECT_GT(requests, 0U);
  EXPECT_GT(rejections, 0U);
  EXPECT_GT(unreadable, 0U);
}

}  // namespace
}  // namespace otsync::protocol
