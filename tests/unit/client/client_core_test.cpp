// The client's protocol core without sockets: the frames it sends for each
// server frame, in the order the sharedb client sends them (handshake with the
// old id, the in-flight op again with its src/seq, then a subscribe from our
// version), gaps, rejected ops, creates, the offline queue on disk, and the
// npm-client frame style, observer and fetch-only mode otsync-load uses.
#include "client/client_core.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "client/file_journal.hpp"
#include "otsync/client/ws_url.hpp"
#include "support/process.hpp"

namespace otsync::client {
namespace {

using nlohmann::json;
using C = ot::component;

constexpr const char* uri = "http://sharejs.org/types/text-unicode";

std::vector<json> parse(const client_core::outbox& out) {
  std::vector<json> frames;
  for (const auto& f : out) frames.push_back(json::parse(f));
  return frames;
}

/// A core with one open, subscribed document "docs/d" at `version` with `text`.
struct harness {
  explicit harness(replica_journal* journal = nullptr) : core(journal, events) {}

  std::vector<json> feed(const json& frame) {
    client_core::outbox out;
    core.on_frame(frame.dump(), out, events);
    return parse(out);
  }
  std::vector<json> connect(const std::string& id) {
    EXPECT_EQ(json::parse(core.on_open())["a"], "hs");
    return feed({{"a", "hs"}, {"protocol", 1}, {"protocolMinor", 2}, {"id", id}, {"type", "json0"}});
  }
  doc_entry& open(std::optional<std::string> create_with = std::nullopt) {
    client_core::outbox out;
    doc_entry& d = core.open("docs", "d", std::move(create_with), out, events);
    opened = parse(out);
    return d;
  }
  std::vector<json> submit(doc_entry& d, const ot::op& edit) {
    client_core::outbox out;
    EXPECT_FALSE(core.submit(d, edit, out, events));
    return parse(out);
  }

  client_events events;
  client_core core;
  std::vector<json> opened;
};

json snapshot_reply(std::uint64_t v, const std::optional<std::string>& text) {
  json data = {{"v", v}};
  if (text) {
    data["data"] = *text;
    data["type"] = uri;
  } else {
    data["type"] = nullptr;
  }
  return {{"a", "s"}, {"c", "docs"}, {"d", "d"}, {"data", data}};
}

TEST(ClientCore, SubscribesAfterTheHandshakeAndSendsOneOpAtATime) {
  harness h;
  doc_entry& d = h.open();
  EXPECT_TRUE(h.opened.empty());  // nothing before the handshake
  auto sent = h.connect("conn1");
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0], (json{{"a", "s"}, {"c", "docs"}, {"d", "d"}, {"v", nullptr}}));
  EXPECT_TRUE(h.feed(snapshot_reply(3, "abc")).empty());
  ASSERT_TRUE(d.replica);
  EXPECT_EQ(d.replica->text().to_string(), "abc");

  auto first = h.submit(d, {C::skip(3), C::insert("d")});
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(first[0], (json{{"a", "op"},
                            {"c", "docs"},
                            {"d", "d"},
                            {"v", 3},
                            {"src", "conn1"},
                            {"seq", 1},
                            {"op", json::array({3, "d"})}}));
  EXPECT_TRUE(h.submit(d, {C::skip(4), C::insert("e")}).empty());  // waits behind the op in flight
  EXPECT_TRUE(h.submit(d, {C::skip(5), C::insert("f")}).empty());
  auto next = h.feed({{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 3}, {"src", "conn1"}, {"seq", 1}});
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(next[0]["seq"], 2);
  EXPECT_EQ(next[0]["v"], 4);
  EXPECT_EQ(next[0]["op"], json::array({4, "ef"}));  // composed
  EXPECT_EQ(d.acks, 1U);
}

TEST(ClientCore, RemoteOpsAreTransformedAndReported) {
  harness h;
  doc_entry& d = h.open();
  h.connect("me");
  h.feed(snapshot_reply(1, "abc"));
  std::vector<change> seen;
  d.on_change = [&seen](const change& c) { seen.push_back(c); };
  h.submit(d, {C::insert("X")});
  h.events = {};
  EXPECT_TRUE(
      h.feed(
           {{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 1}, {"src", "other"}, {"seq", 7}, {"op", json::array({"R"})}})
          .empty());
  EXPECT_EQ(d.replica->text().to_string(), "XRabc");  // our in-flight insert wins the tie
  ASSERT_EQ(h.events.changes.size(), 1U);
  const change& c = h.events.changes[0].second;
  EXPECT_EQ(c.kind, change_kind::edit);
  EXPECT_EQ(c.src, "other");
  EXPECT_EQ(c.version, 2U);
  EXPECT_EQ(c.op, (ot::op{C::skip(1), C::insert("R")}));  // as applied to our text
}

TEST(ClientCore, ReconnectSendsTheInflightOpAgainFirstThenSubscribesFromItsVersion) {
  harness h;
  doc_entry& d = h.open();
  h.connect("me");
  h.feed(snapshot_reply(4, "abcd"));
  h.submit(d, {C::insert("Z")});
  h.submit(d, {C::skip(1), C::insert("Y")});  // pending
  h.core.on_disconnected();
  EXPECT_EQ(json::parse(h.core.on_open())["id"], "me");  // the old id, for the server to adopt
  auto sent = h.connect("me");
  ASSERT_EQ(sent.size(), 2U);
  EXPECT_EQ(
      sent[0],
      (json{{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 4}, {"src", "me"}, {"seq", 1}, {"op", json::array({"Z"})}}));
  EXPECT_EQ(sent[1], (json{{"a", "s"}, {"c", "docs"}, {"d", "d"}, {"v", 4}}));
  // The server had committed it before the drop, at v5: the ack is ahead, so the core catches up.
  auto catchup = h.feed({{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 5}, {"src", "me"}, {"seq", 1}});
  ASSERT_EQ(catchup.size(), 1U);
  EXPECT_EQ(catchup[0], (json{{"a", "f"}, {"c", "docs"}, {"d", "d"}, {"v", 4}}));
  EXPECT_TRUE(
      h.feed(
           {{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 4}, {"src", "o"}, {"seq", 1}, {"op", json::array({4, "!"})}})
          .empty());
  // Our own op in the stream is the ack; the pending op goes out next (the subscribe already replied? not yet).
  h.feed({{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 5}, {"src", "me"}, {"seq", 1}, {"op", json::array({"Z"})}});
  EXPECT_EQ(d.acks, 1U);
  EXPECT_EQ(d.replica->version(), 6U);
  auto after = h.feed({{"a", "s"}, {"c", "docs"}, {"d", "d"}});
  ASSERT_EQ(after.size(), 1U);
  EXPECT_EQ(after[0]["seq"], 2);
  EXPECT_EQ(after[0]["v"], 6);
  EXPECT_EQ(d.replica->text().to_string(), "ZYabcd!");
}

TEST(ClientCore, AGapFetchesTheMissingOpsOnce) {
  harness h;
  doc_entry& d = h.open();
  h.connect("me");
  h.feed(snapshot_reply(2, "ab"));
  json later = {{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 4}, {"src", "o"}, {"seq", 9}, {"op", json::array({"x"})}};
  auto sent = h.feed(later);
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0], (json{{"a", "f"}, {"c", "docs"}, {"d", "d"}, {"v", 2}}));
  EXPECT_TRUE(h.feed(later).empty());  // fetches are not repeated
  EXPECT_EQ(d.replica->version(), 2U);
}

TEST(ClientCore, ARejectedOpReloadsTheSnapshot) {
  harness h;
  doc_entry& d = h.open();
  h.connect("me");
  h.feed(snapshot_reply(1, "abc"));
  h.submit(d, {C::insert("bad")});
  auto sent = h.feed({{"a", "op"},
                      {"c", "docs"},
                      {"d", "d"},
                      {"v", 1},
                      {"seq", 1},
                      {"op", json::array({"bad"})},
                      {"error", {{"code", "ERR_OP_SUBMIT_REJECTED"}, {"message", "no"}}}});
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0], (json{{"a", "f"}, {"c", "docs"}, {"d", "d"}, {"v", nullptr}}));
  ASSERT_EQ(h.events.errors.size(), 1U);
  EXPECT_EQ(h.events.errors[0].code, "ERR_OP_SUBMIT_REJECTED");
  json reply = snapshot_reply(2, "abc!");
  reply["a"] = "f";
  h.feed(reply);
  EXPECT_EQ(d.replica->text().to_string(), "abc!");
  EXPECT_TRUE(d.replica->synchronised());
}

TEST(ClientCore, CreatesAMissingDocumentAndTakesAConcurrentCreate) {
  harness h;
  doc_entry& d = h.open("hello");
  h.connect("me");
  auto sent = h.feed(snapshot_reply(0, std::nullopt));
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0]["create"], (json{{"type", uri}, {"data", "hello"}}));
  EXPECT_EQ(sent[0]["v"], 0);
  h.feed({{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 0}, {"src", "me"}, {"seq", sent[0]["seq"]}});
  ASSERT_TRUE(d.replica);
  EXPECT_EQ(d.replica->text().to_string(), "hello");
  EXPECT_EQ(d.replica->version(), 1U);

  harness other;
  doc_entry& e = other.open("mine");
  other.connect("two");
  auto create = other.feed(snapshot_reply(0, std::nullopt));
  // Someone else's create arrives first; ours is refused as already created.
  other.feed({{"a", "op"},
              {"c", "docs"},
              {"d", "d"},
              {"v", 0},
              {"src", "x"},
              {"seq", 1},
              {"create", {{"type", uri}, {"data", "theirs"}}}});
  other.feed({{"a", "op"},
              {"c", "docs"},
              {"d", "d"},
              {"v", 0},
              {"seq", create[0]["seq"]},
              {"error", {{"code", "ERR_DOC_ALREADY_CREATED"}, {"message", "exists"}}}});
  ASSERT_TRUE(e.replica);
  EXPECT_EQ(e.replica->text().to_string(), "theirs");
  EXPECT_TRUE(other.events.errors.empty());
}

TEST(ClientCore, ACreateLostWithTheConnectionIsSentAgain) {
  harness h;
  doc_entry& d = h.open("text");
  h.connect("me");
  auto first = h.feed(snapshot_reply(0, std::nullopt));
  ASSERT_EQ(first.size(), 1U);
  h.core.on_disconnected();  // no ack: the create may or may not have been committed
  h.connect("me");
  auto second = h.feed(snapshot_reply(0, std::nullopt));  // it was not
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(second[0]["create"]["data"], "text");
  EXPECT_NE(second[0]["seq"], first[0]["seq"]);
  h.core.on_disconnected();
  h.connect("me");
  EXPECT_TRUE(h.feed(snapshot_reply(1, "text")).empty());  // this time it was: the snapshot is adopted
  ASSERT_TRUE(d.replica);
  EXPECT_EQ(d.replica->text().to_string(), "text");
}

TEST(ClientCore, IgnoresFramesThatAreNotObjectsAndReportsThem) {
  harness h;
  client_core::outbox out;
  h.core.on_frame("not json", out, h.events);
  h.core.on_frame("[1,2]", out, h.events);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(h.events.errors.size(), 2U);
}

/// What the load generator measures, as the core reports it.
struct recorder final : core_observer {
  std::vector<std::uint64_t> sent;
  std::vector<std::uint64_t> acked;
  std::vector<std::pair<std::string, std::uint64_t>> applied;
  void op_sent(const doc_entry& /*doc*/, const outgoing_op& op) override { sent.push_back(op.seq); }
  void acknowledged(const doc_entry& /*doc*/, std::uint64_t seq) override { acked.push_back(seq); }
  void remote_applied(const doc_entry& /*doc*/, std::string_view src, std::uint64_t seq) override {
    applied.emplace_back(src, seq);
  }
};

TEST(ClientCore, WritesTheNpmClientsFramesAndReportsToItsObserver) {
  client_events events;
  recorder seen;
  client_core core(nullptr, events, {protocol::frame_style::sharedb_npm, &seen});
  client_core::outbox out;
  doc_entry& d = core.open("docs", "d", std::string(), out, events);
  EXPECT_EQ(core.on_open(), R"({"a":"hs","id":null,"protocol":1,"protocolMinor":2})");
  core.on_frame(R"({"a":"hs","protocol":1,"protocolMinor":2,"id":"me"})", out, events);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0], R"({"a":"s","c":"docs","d":"d","v":null})");
  out.clear();
  core.on_frame(snapshot_reply(0, std::nullopt).dump(), out, events);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0], std::string(R"({"a":"op","c":"docs","d":"d","v":0,"seq":1,"x":{},"create":{"type":")") + uri +
                        R"(","data":""}})");
  out.clear();
  core.on_frame(R"({"a":"op","c":"docs","d":"d","v":0,"src":"me","seq":1})", out, events);
  ASSERT_TRUE(d.replica);
  EXPECT_FALSE(core.submit(d, {C::insert("a")}, out, events));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0], R"({"a":"op","c":"docs","d":"d","v":1,"seq":2,"x":{},"op":["a"]})");  // no src: not a resend
  EXPECT_EQ(seen.sent, std::vector<std::uint64_t>{2});
  out.clear();
  core.on_frame(R"({"a":"op","c":"docs","d":"d","v":1,"src":"o","seq":5,"op":["b"]})", out, events);
  core.on_frame(R"({"a":"op","c":"docs","d":"d","v":2,"src":"me","seq":2})", out, events);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(seen.applied, (std::vector<std::pair<std::string, std::uint64_t>>{{"o", 5}}));
  EXPECT_EQ(seen.acked, std::vector<std::uint64_t>{2});
  EXPECT_EQ(d.replica->version(), 3U);
  EXPECT_TRUE(events.errors.empty());
}

TEST(ClientCore, AFetchOnlyDocumentFetchesOnceInsteadOfSubscribing) {
  harness h;
  doc_entry& d = h.open();
  d.fetch_only = true;
  auto sent = h.connect("me");
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0], (json{{"a", "f"}, {"c", "docs"}, {"d", "d"}, {"v", nullptr}}));
  json reply = snapshot_reply(3, "abc");
  reply["a"] = "f";
  EXPECT_TRUE(h.feed(reply).empty());
  EXPECT_TRUE(d.loaded);
  EXPECT_FALSE(d.subscribed);
  ASSERT_TRUE(d.replica);
  EXPECT_EQ(d.replica->text().to_string(), "abc");
  EXPECT_EQ(d.replica->version(), 3U);
}

TEST(ClientCore, AnOpInAnUncommonFormIsReadAsTheDomReadsIt) {
  harness h;
  doc_entry& d = h.open();
  h.connect("me");
  h.feed(snapshot_reply(2, "ab"));
  // 1.0 is a valid skip for a DOM reader; the scanner leaves it to op_from_json.
  EXPECT_TRUE(h.feed(json::parse(R"({"a":"op","c":"docs","d":"d","v":2,"src":"o","seq":1,"op":[1.0,"x"]})")).empty());
  EXPECT_EQ(d.replica->text().to_string(), "axb");
  // An op that does not check is reported and the snapshot reloaded.
  auto sent = h.feed(json::parse(R"({"a":"op","c":"docs","d":"d","v":3,"src":"o","seq":2,"op":[0,"x"]})"));
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0], (json{{"a", "f"}, {"c", "docs"}, {"d", "d"}, {"v", nullptr}}));
  ASSERT_EQ(h.events.errors.size(), 1U);
  EXPECT_EQ(h.events.errors[0].code, "OTSYNC_CLIENT_BAD_OP");
}

TEST(WsUrl, SplitsHostPortAndPath) {
  auto u = parse_ws_url("ws://127.0.0.1:8080/ws");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, "8080");
  EXPECT_EQ(u.path, "/ws");
  auto v6 = parse_ws_url("ws://[::1]:9000");
  EXPECT_EQ(v6.host, "[::1]");
  EXPECT_EQ(v6.name, "::1");
  EXPECT_EQ(v6.path, "/");
  EXPECT_EQ(parse_ws_url("ws://example.org/a/b").port, "80");
  EXPECT_FALSE(u.tls);
  auto secure = parse_ws_url("wss://example.org/ws");
  EXPECT_TRUE(secure.tls);
  EXPECT_EQ(secure.name, "example.org");
  EXPECT_EQ(secure.port, "443");
  EXPECT_EQ(secure.path, "/ws");
  auto secure_v6 = parse_ws_url("wss://[::1]:8443");
  EXPECT_TRUE(secure_v6.tls);
  EXPECT_EQ(secure_v6.name, "::1");
  EXPECT_EQ(secure_v6.port, "8443");
  EXPECT_THROW(parse_ws_url("https://example.org/"), std::invalid_argument);
  EXPECT_THROW(parse_ws_url("wss:/example.org/"), std::invalid_argument);
  EXPECT_THROW(parse_ws_url("wss://:443/"), std::invalid_argument);
  EXPECT_THROW(parse_ws_url("ws://:80/"), std::invalid_argument);
}

class OfflineQueue : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_ = otsync::test::make_temp_dir("otsync-client-journal");
};

TEST_F(OfflineQueue, UnsentEditsSurviveARestartAndKeepTheirSeq) {
  std::string inflight_seq;
  {
    file_journal journal(dir_);
    harness h(&journal);
    doc_entry& d = h.open();
    h.connect("me");
    h.feed(snapshot_reply(2, "ab"));
    auto sent = h.submit(d, {C::skip(2), C::insert("c")});
    ASSERT_EQ(sent.size(), 1U);
    inflight_seq = sent[0]["seq"].dump();
    h.submit(d, {C::skip(3), C::insert("d")});  // pending, never sent
    // The program stops here: no ack arrives.
  }
  file_journal journal(dir_);
  harness h(&journal);
  EXPECT_EQ(json::parse(h.core.on_open())["id"], "me");
  doc_entry& d = h.open();
  ASSERT_TRUE(d.replica);
  EXPECT_EQ(d.replica->text().to_string(), "abcd");  // readable before connecting
  auto sent = h.connect("me");
  ASSERT_EQ(sent.size(), 2U);
  EXPECT_EQ(sent[0]["seq"].dump(), inflight_seq);  // so the server recognises a resend
  EXPECT_EQ(sent[0]["op"], json::array({2, "c"}));
  EXPECT_EQ(sent[0]["v"], 2);
  EXPECT_EQ(sent[1], (json{{"a", "s"}, {"c", "docs"}, {"d", "d"}, {"v", 2}}));
  h.feed({{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 2}, {"src", "me"}, {"seq", sent[0]["seq"]}});
  auto next = h.feed({{"a", "s"}, {"c", "docs"}, {"d", "d"}});
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(next[0]["op"], json::array({3, "d"}));
  // New ops never reuse a seq handed out before the restart.
  EXPECT_GT(next[0]["seq"].get<std::uint64_t>(), sent[0]["seq"].get<std::uint64_t>() + 1);
}

TEST_F(OfflineQueue, AnUnreadableFileIsReportedAndKept) {
  file_journal journal(dir_);
  auto path = journal.path_of("docs", "d");
  std::ofstream(path) << "{broken";
  harness h(&journal);
  doc_entry& d = h.open();
  EXPECT_FALSE(d.replica);
  ASSERT_EQ(h.events.errors.size(), 1U);
  EXPECT_EQ(h.events.errors[0].code, "OTSYNC_CLIENT_OFFLINE_QUEUE");
  EXPECT_NE(h.events.errors[0].message.find(path.string()), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace otsync::client
