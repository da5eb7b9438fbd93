// The client side's codec of ShareDB messages: the decoder of the server's
// messages shared by client_core and otsync-load (every member, wrong types
// read as absent, ops the fast path leaves to op_from_json, and hostile
// input: deep nesting, huge numbers, malformed JSON, a bounded randomised
// fuzz that must never crash), and the encoders of the client's frames in
// both styles.
#include "otsync/protocol/server_message.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/op_json.hpp"

namespace otsync::protocol {
namespace {

using nlohmann::json;
using C = ot::component;

server_message decode(std::string_view text) {
  server_message m;
  EXPECT_TRUE(decode_server_message(text, m)) << text;
  return m;
}

bool rejects(std::string_view text) {
  server_message m;
  return !decode_server_message(text, m);
}

std::string dom_string(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::uint64_t> dom_uint(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

/// The decoder agrees with a DOM reader (client_core's former one) on every member it reads.
void expect_as_dom_reads(const server_message& m, const json& j, const std::string& text) {
  ASSERT_TRUE(j.is_object()) << text;
  const std::string a = dom_string(j, "a");
  const server_action action = a == "op"     ? server_action::op
                               : a == "s"    ? server_action::s
                               : a == "f"    ? server_action::f
                               : a == "hs"   ? server_action::hs
                               : a == "init" ? server_action::init
                                             : server_action::other;
  EXPECT_EQ(m.a, action) << text;
  EXPECT_EQ(m.c, dom_string(j, "c")) << text;
  EXPECT_EQ(m.d, dom_string(j, "d")) << text;
  EXPECT_EQ(m.src, dom_string(j, "src")) << text;
  EXPECT_EQ(m.id, dom_string(j, "id")) << text;
  EXPECT_EQ(m.v, dom_uint(j, "v")) << text;
  EXPECT_EQ(m.seq, dom_uint(j, "seq")) << text;
  EXPECT_EQ(m.has_op, j.contains("op")) << text;
  if (m.op_read) {
    auto op = op_from_json_unchecked(j["op"]);
    ASSERT_TRUE(op) << text;
    EXPECT_EQ(m.op, *op) << text;
  }
  EXPECT_EQ(m.has_create, j.contains("create")) << text;
  if (m.has_create) {
    EXPECT_EQ(m.create_data, j["create"].is_object() ? dom_string(j["create"], "data") : "") << text;
  }
  EXPECT_EQ(m.has_del, j.contains("del")) << text;
  EXPECT_EQ(m.has_error, j.contains("error")) << text;
  if (m.has_error) {
    const json& e = j["error"];
    std::string message = dom_string(e, "message");
    std::pair<std::string, std::string> expected =
        e.is_object() ? std::make_pair(dom_string(e, "code"), message.empty() ? e.dump() : message)
                      : std::make_pair(std::string(), e.dump());
    EXPECT_EQ(error_parts(m), expected) << text;
  }
  auto data = j.find("data");
  EXPECT_EQ(m.has_snapshot, data != j.end() && data->is_object()) << text;
  if (m.has_snapshot) {
    EXPECT_EQ(m.snapshot_v, dom_uint(*data, "v")) << text;
    auto type = data->find("type");
    EXPECT_EQ(m.snapshot_has_type, type != data->end() && type->is_string()) << text;
    EXPECT_EQ(m.snapshot_type, dom_string(*data, "type")) << text;
    EXPECT_EQ(m.snapshot_data, dom_string(*data, "data")) << text;
  }
}

TEST(ServerMessage, ReadsABroadcastOp) {
  auto m = decode(
      R"({"a":"op","c":"docs","d":"d1","v":7,"src":"conn","seq":3,"op":[2,"h\u00e9\ud83d\ude00\n",{"d":4},1,{"d":"xy","z":[1]}],"m":{"ts":1}})");
  EXPECT_EQ(m.a, server_action::op);
  EXPECT_EQ(m.c, "docs");
  EXPECT_EQ(m.d, "d1");
  EXPECT_EQ(m.v, 7U);
  EXPECT_EQ(m.src, "conn");
  EXPECT_EQ(m.seq, 3U);
  ASSERT_TRUE(m.has_op);
  ASSERT_TRUE(m.op_read);
  ot::op expected{C::skip(2), C::insert("hé😀\n"), C::erase(4), C::skip(1), C::erase("xy")};
  EXPECT_EQ(m.op, expected);
  EXPECT_EQ(m.op[1].length(), 4U);  // code points
  EXPECT_FALSE(m.has_create || m.has_del || m.has_error || m.has_snapshot);
}

TEST(ServerMessage, ReadsAnAckACreateAndADelete) {
  auto ack = decode(R"({"a":"op","c":"docs","d":"d1","v":7,"src":"me","seq":3})");
  EXPECT_FALSE(ack.has_op || ack.has_create || ack.has_del);
  auto create = decode(
      R"({"a":"op","c":"docs","d":"d1","v":0,"src":"x","seq":1,"create":{"type":"http://sharejs.org/types/text-unicode","data":"hi"}})");
  EXPECT_TRUE(create.has_create);
  EXPECT_EQ(create.create_data, "hi");
  auto odd = decode(R"({"a":"op","v":0,"create":{"data":{"x":1}}})");
  EXPECT_TRUE(odd.has_create);
  EXPECT_EQ(odd.create_data, "");
  auto del = decode(R"({"a":"op","c":"docs","d":"d1","v":9,"del":true})");
  EXPECT_TRUE(del.has_del);
}

TEST(ServerMessage, ReadsSnapshotsHandshakesAndTheEndOfAFetch) {
  auto s = decode(
      R"({"a":"s","c":"docs","d":"d1","data":{"v":4,"type":"http://sharejs.org/types/text-unicode","data":"abc"}})");
  EXPECT_EQ(s.a, server_action::s);
  ASSERT_TRUE(s.has_snapshot);
  EXPECT_EQ(s.snapshot_v, 4U);
  EXPECT_TRUE(s.snapshot_has_type);
  EXPECT_EQ(s.snapshot_type, "http://sharejs.org/types/text-unicode");
  EXPECT_EQ(s.snapshot_data, "abc");
  auto missing = decode(R"({"a":"f","c":"docs","d":"d1","data":{"v":0,"type":null}})");
  ASSERT_TRUE(missing.has_snapshot);
  EXPECT_FALSE(missing.snapshot_has_type);
  auto json0 = decode(R"({"a":"f","c":"docs","d":"d1","data":{"v":2,"type":"json0","data":{"k":[1,2]}}})");
  EXPECT_TRUE(json0.snapshot_has_type);
  EXPECT_EQ(json0.snapshot_data, "");
  auto end = decode(R"({"a":"f","c":"docs","d":"d1"})");
  EXPECT_FALSE(end.has_snapshot);
  auto hs = decode(R"({"a":"hs","protocol":1,"protocolMinor":2,"id":"abc","type":"http://sharejs.org/types/JSONv0"})");
  EXPECT_EQ(hs.a, server_action::hs);
  EXPECT_EQ(hs.id, "abc");
  EXPECT_EQ(decode(R"({"a":"init","protocol":1})").a, server_action::init);
  EXPECT_EQ(decode(R"({"a":"p","ch":"x"})").a, server_action::other);
  EXPECT_EQ(decode("{}").a, server_action::other);
}

TEST(ServerMessage, ReadsErrorsAsShareDBsClientDoes) {
  auto m = decode(R"({"a":"op","c":"docs","d":"d1","seq":2,"error":{"code":"ERR_X","message":"no"}})");
  ASSERT_TRUE(m.has_error);
  EXPECT_EQ(error_parts(m), std::make_pair(std::string("ERR_X"), std::string("no")));
  auto bare = decode(R"({"a":"s","error":{"code":"ERR_Y"}})");
  EXPECT_EQ(error_parts(bare), std::make_pair(std::string("ERR_Y"), std::string(R"({"code":"ERR_Y"})")));
  auto text = decode(R"({"a":"s","error":"boom"})");
  EXPECT_EQ(error_parts(text), std::make_pair(std::string(), std::string(R"("boom")")));
}

TEST(ServerMessage, WrongTypesAreAbsent) {
  auto m = decode(R"({"a":1,"c":2,"d":null,"v":"3","seq":-1,"src":[1],"id":{}})");
  EXPECT_EQ(m.a, server_action::other);
  EXPECT_TRUE(m.c.empty() && m.d.empty() && m.src.empty() && m.id.empty());
  EXPECT_FALSE(m.v || m.seq);
  EXPECT_FALSE(decode(R"({"v":1.5})").v);
  EXPECT_FALSE(decode(R"({"v":1e3})").v);
  EXPECT_FALSE(decode(R"({"v":99999999999999999999999999})").v);
  EXPECT_FALSE(decode(R"({"v":-0})").v);
  EXPECT_EQ(decode(R"({"v":18446744073709551615})").v, 18446744073709551615ULL);
  EXPECT_FALSE(decode(R"({"a":"s","data":{"v":-4,"type":3,"data":7}})").snapshot_v);
}

TEST(ServerMessage, LeavesUncommonOpsToTheDomReader) {
  for (const char* op : {R"([1.0,"x"])", R"("x")", R"([null])", R"([-1])", R"([{"d":1,"d":2}])", R"([{}])",
                         R"([9007199254740992])", R"([[1]])"}) {
    std::string text = std::string(R"({"a":"op","v":1,"op":)") + op + "}";
    auto m = decode(text);
    EXPECT_TRUE(m.has_op) << op;
    EXPECT_FALSE(m.op_read) << op;
    EXPECT_EQ(m.op_raw, op);
    EXPECT_TRUE(m.op.empty());
  }
}

TEST(ServerMessage, InvalidTextAnywhereRejectsTheFrame) {
  // As a DOM parser would: invalid UTF-8, mismatched brackets or loose numbers, also where the
  // decoder only skips, make the frame unreadable.
  for (const char* text :
       {"{\"a\":\"op\",\"v\":1,\"op\":[\"\xc3\"]}", "{\"a\":\"op\",\"m\":{\"x\":\"\xc3\"}}", "{\"a\":\"op\",\"m\":[1}",
        "{\"a\":\"op\",\"m\":{\"x\":1]}", "{\"a\":\"op\",\"m\":{1:2}}", "{\"a\":\"op\",\"m\":[1,]}",
        "{\"a\":\"op\",\"m\":[1 2]}", "{\"a\":\"op\",\"m\":1..2}", "{\"a\":\"op\",\"m\":01}", "{\"a\":\"op\",\"m\":1e}",
        "{\"a\":\"op\",\"m\":1e999}", "{\"a\":\"op\",\"v\":01}", "{\"a\":\"op\",\"m\":{\"x\"}}"}) {
    EXPECT_TRUE(rejects(text)) << text;
  }
  // And what is valid JSON is skipped wherever it is.
  auto m = decode(R"({"a":"op","m":{"x":[1,-2.5e+3,{"y":null},"\u00e9"],"z":{}},"v":3,"n":[]})");
  EXPECT_EQ(m.v, 3u);
}

TEST(ServerMessage, RejectsMalformedJson) {
  for (const char* text :
       {"", "[]", "\"x\"", "{", "{\"a\"", "{\"a\":}", "{\"a\":\"op\",}", "{a:1}", "{\"a\":tru}", "{\"a\":\"op\"} x",
        "{\"a\":\"\\q\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00x\"}",
        "{\"x\":[1,2}", "{\"op\":[1,\"a\"}", "{\"x\":-}", "{\"x\":\"unterminated}"}) {
    EXPECT_TRUE(rejects(text)) << text;
  }
}

TEST(ServerMessage, BoundsNesting) {
  auto nested = [](std::size_t levels) {
    return R"({"a":"op","x":)" + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  EXPECT_FALSE(rejects(nested(default_max_json_depth - 1)));
  EXPECT_TRUE(rejects(nested(default_max_json_depth)));
  EXPECT_TRUE(rejects(nested(1000000)));  // no recursion: no stack to overflow
  EXPECT_TRUE(rejects(R"({"op":)" + std::string(100000, '[') + "}"));
  EXPECT_TRUE(rejects(R"({"data":{"x":)" + std::string(100000, '{') + "}"));
  EXPECT_TRUE(rejects(R"({"error":)" + std::string(100000, '[') + "}"));
  EXPECT_TRUE(rejects(R"({"op":[{"x":)" + std::string(100000, '[') + "}]}"));
  // A huge op: left to the DOM reader, whose bounds refuse it.
  std::string big = R"({"a":"op","v":1,"op":[)";
  for (std::size_t i = 0; i <= default_max_json_values; ++i) big += i == 0 ? "\"a\"" : ",1,\"a\"";
  big += "]}";
  auto m = decode(big);
  EXPECT_FALSE(m.op_read);
  EXPECT_TRUE(parse_json_bounded(m.op_raw).is_discarded());
}

TEST(ServerMessage, RandomisedInputNeverCrashes) {
  const std::string seeds[] = {
      R"({"a":"op","c":"docs","d":"d1","v":7,"src":"conn","seq":3,"op":[2,"hé😀",{"d":4},1,{"d":"xy"}]})",
      R"({"a":"s","c":"docs","d":"d1","data":{"v":4,"type":"http://sharejs.org/types/text-unicode","data":"abc"}})",
      R"({"a":"op","c":"docs","d":"d1","seq":2,"error":{"code":"ERR_X","message":"no"}})",
      R"({"a":"hs","protocol":1,"protocolMinor":2,"id":"abc"})",
      R"({"a":"op","v":1,"v":"x","seq":2.0,"create":{"data":"a"},"create":3,"error":"e","error":{"message":"m"},"del":0})",
      R"({"a":"f","data":{"v":1,"type":"t","data":"x"},"data":{"v":-1,"data":["x"]},"src":1,"src":"s"})"};
  const char alphabet[] = "{}[]\",:\\u0123456789-.eE tfnlrsa\xc3\xa9\xff";
  std::mt19937 rng(7);
  server_message m;
  for (std::size_t i = 0; i < std::size(seeds); ++i) {
    ASSERT_TRUE(decode_server_message(seeds[i], m));
    expect_as_dom_reads(m, parse_json_bounded(seeds[i]), seeds[i]);
  }
  int compared = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text = seeds[static_cast<std::size_t>(i) % std::size(seeds)];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = alphabet[rng() % (sizeof alphabet - 1)];
          break;
        case 1:
          text.insert(at, 1, alphabet[rng() % (sizeof alphabet - 1)]);
          break;
        default:
          text.resize(at);
      }
    }
    if (!decode_server_message(text, m)) continue;
    if (m.has_error) (void)error_parts(m);
    if (m.has_op && !m.op_read) (void)parse_json_bounded(m.op_raw);
    // The decoder accepts only JSON, and where a DOM reads the same text, it reads the same message.
    json j = parse_json_bounded(text);
    if (j.is_discarded()) {
      ADD_FAILURE() << "accepted what is not JSON: " << text;
      continue;
    }
    ++compared;
    expect_as_dom_reads(m, j, text);
  }
  EXPECT_GT(compared, 2000);  // the comparison is exercised
}

TEST(ClientFrames, SharedbNpmStyle) {
  std::string out = "leftover";
  encode_handshake(out, "");
  EXPECT_EQ(out, R"({"a":"hs","id":null,"protocol":1,"protocolMinor":2})");
  encode_handshake(out, "me");
  EXPECT_EQ(out, R"({"a":"hs","id":"me","protocol":1,"protocolMinor":2})");
  encode_doc_request(out, "s", "docs", "d\"1", std::nullopt);
  EXPECT_EQ(out, R"({"a":"s","c":"docs","d":"d\"1","v":null})");
  encode_doc_request(out, "f", "docs", "d1", 5);
  EXPECT_EQ(out, R"({"a":"f","c":"docs","d":"d1","v":5})");
  ot::op op{C::skip(2), C::insert("é"), C::erase(3)};
  encode_submit(out, frame_style::sharedb_npm, "docs", "d1", 4, 9, "me", false, op);
  EXPECT_EQ(out, R"({"a":"op","c":"docs","d":"d1","v":4,"seq":9,"x":{},"op":[2,"é",{"d":3}]})");
  encode_submit(out, frame_style::sharedb_npm, "docs", "d1", 4, 9, "me", true, op);
  EXPECT_EQ(out, R"({"a":"op","c":"docs","d":"d1","v":4,"src":"me","seq":9,"x":{},"op":[2,"é",{"d":3}]})");
  encode_create(out, frame_style::sharedb_npm, "docs", "d1", 0, 1, "me", "");
  EXPECT_EQ(
      out,
      R"({"a":"op","c":"docs","d":"d1","v":0,"seq":1,"x":{},"create":{"type":"http://sharejs.org/types/text-unicode","data":""}})");
}

TEST(ClientFrames, OtsyncStyleIsNlohmannsSortedDump) {
  std::string out;
  ot::op op{C::skip(2), C::insert("é\n"), C::erase("ab")};
  encode_submit(out, frame_style::otsync, "docs", "d1", 4, 9, "me", false, op);
  json expected = {{"a", "op"},
                   {"c", "docs"},
                   {"d", "d1"},
                   {"v", 4},
                   {"src", "me"},
                   {"seq", 9},
                   {"op", json::array({2, "é\n", json{{"d", "ab"}}})}};
  EXPECT_EQ(out, expected.dump());
  encode_create(out, frame_style::otsync, "docs", "d1", 3, 2, "me", "hello");
  json create = {{"a", "op"},
                 {"c", "docs"},
                 {"d", "d1"},
                 {"v", 3},
                 {"src", "me"},
                 {"seq", 2},
                 {"create", {{"type", std::string(text_unicode_uri)}, {"data", "hello"}}}};
  EXPECT_EQ(out, create.dump());
}

}  // namespace
}  // namespace otsync::protocol
