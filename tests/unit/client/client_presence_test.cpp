// Presence in the client's protocol core, without sockets: the frames it sends
// (`ps` after every handshake, our `p` only when no edit of ours is
// unacknowledged, again on `pr` and after a reconnect), remote presences moved
// through the ops committed since they were sent, through our in-flight and
// pending edits, held back until we reach their version, the bounds, and
// malformed frames (fuzzed: nothing crashes, every view stays on the text).
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "client/client_core.hpp"

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

std::vector<json> only(const std::vector<json>& frames, const std::string& action) {
  std::vector<json> kept;
  for (const auto& f : frames)
    if (f.value("a", "") == action) kept.push_back(f);
  return kept;
}

struct harness {
  explicit harness(client_core_options options = {}) : core(nullptr, events, options) {}

  std::vector<json> feed(const json& frame) { return feed_text(frame.dump()); }
  std::vector<json> feed_text(std::string_view text) {
    client_core::outbox out;
    core.on_frame(text, out, events);
    deliver();
    return parse(out);
  }
  /// Runs the presence callbacks, as the connection does once its lock is released.
  void deliver() {
    auto presences = std::move(events.presences);
    events.presences.clear();
    for (auto& [callback, change] : presences) callback(change);
  }
  std::vector<json> connect(const std::string& id = "me") {
    core.on_open();
    return feed({{"a", "hs"}, {"protocol", 1}, {"protocolMinor", 2}, {"id", id}, {"type", "json0"}});
  }
  /// "docs/d" open, presence on, connected and subscribed at `version` with `text`.
  doc_entry& ready(std::uint64_t version, const std::string& text) {
    client_core::outbox out;
    doc_entry& d = core.open("docs", "d", std::nullopt, out, events);
    core.enable_presence(d, out);
    d.presence->on_presence = [this](const presence_change& c) { seen.push_back(c); };
    auto sent = connect();
    EXPECT_EQ(only(sent, "ps").size(), 1U);
    feed({{"a", "s"}, {"c", "docs"}, {"d", "d"}, {"data", {{"v", version}, {"data", text}, {"type", uri}}}});
    feed({{"a", "ps"}, {"ch", "docs.d"}, {"seq", sent.back()["seq"]}});
    return d;
  }
  std::vector<json> submit(doc_entry& d, const ot::op& edit) {
    client_core::outbox out;
    EXPECT_FALSE(core.submit(d, edit, out, events));
    deliver();
    return parse(out);
  }
  std::vector<json> select(doc_entry& d, std::optional<ot::selection> range) {
    client_core::outbox out;
    EXPECT_FALSE(core.set_selection(d, range, {}, out, events));
    deliver();
    return parse(out);
  }
  std::vector<json> remote_op(std::uint64_t v, const std::string& src, const json& op) {
    return feed({{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", v}, {"src", src}, {"seq", ++remote_seq}, {"op", op}});
  }
  std::vector<json> ack(std::uint64_t v, std::uint64_t seq) {
    return feed({{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", v}, {"src", "me"}, {"seq", seq}});
  }
  std::vector<json> presence(const std::string& id, const std::string& src, std::uint64_t pv, std::uint64_t v,
                             const json& value) {
    return feed({{"a", "p"},
                 {"ch", "docs.d"},
                 {"src", src},
                 {"id", id},
                 {"p", value},
                 {"pv", pv},
                 {"c", "docs"},
                 {"d", "d"},
                 {"v", v},
                 {"t", uri}});
  }
  std::optional<ot::selection> view(const doc_entry& d, const std::string& id) {
    for (const auto& p : core.remote_presences(d))
      if (p.id == id) return p.selection;
    return std::nullopt;
  }

  client_events events;
  client_core core;
  std::vector<presence_change> seen;
  std::uint64_t remote_seq = 0;
};

json range(std::uint64_t index, std::int64_t length = 0) {
  return {{"index", index}, {"length", length}};
}

TEST(ClientPresence, SubscribesAfterEveryHandshakeWithARisingSeq) {
  harness h;
  client_core::outbox out;
  doc_entry& d = h.core.open("docs", "d", std::nullopt, out, h.events);
  h.core.enable_presence(d, out);
  EXPECT_TRUE(out.empty());  // nothing before the handshake
  auto first = h.connect();
  ASSERT_EQ(first.size(), 2U);
  EXPECT_EQ(first[0]["a"], "s");
  EXPECT_EQ(first[1]["a"], "ps");
  EXPECT_EQ(first[1]["ch"], "docs.d");
  h.core.on_disconnected();
  auto again = only(h.connect(), "ps");
  ASSERT_EQ(again.size(), 1U);
  EXPECT_GT(again[0]["seq"].get<std::uint64_t>(), first[1]["seq"].get<std::uint64_t>());
  EXPECT_EQ(d.presence->local_id.size(), 20U);
}

TEST(ClientPresence, OurSelectionGoesOutAtOurVersionOnceNothingOfOursIsUnacknowledged) {
  harness h;
  doc_entry& d = h.ready(5, "hello");
  auto sent = h.select(d, ot::selection{2, 4});
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0], (json{{"a", "p"},
                           {"ch", "docs.d"},
                           {"id", d.presence->local_id},
                           {"p", range(2, 2)},
                           {"pv", 0},
                           {"c", "docs"},
                           {"d", "d"},
                           {"v", 5},
                           {"t", uri}}));
  EXPECT_EQ(h.submit(d, {C::skip(4), C::insert("XY")}).size(), 1U);  // in flight; the focus follows our typing
  EXPECT_EQ(d.presence->local, (ot::selection{2, 6}));
  EXPECT_TRUE(h.select(d, ot::selection{6, 6}).empty());  // waits for the ack
  h.submit(d, {C::skip(6), C::insert("Z")});              // pending: the caret follows
  auto after_ack = h.ack(5, 1);
  // The pending op goes out: still not synchronised.
  EXPECT_TRUE(only(after_ack, "p").empty());
  auto after_second = only(h.ack(6, 2), "p");
  ASSERT_EQ(after_second.size(), 1U);
  EXPECT_EQ(after_second[0]["p"], range(7));
  EXPECT_EQ(after_second[0]["v"], 7);
  EXPECT_EQ(after_second[0]["pv"], 1);
  // A remote insert at the caret does not move ours (not our op).
  h.remote_op(7, "bob", json::array({7, "!"}));
  EXPECT_EQ(d.presence->local, (ot::selection{7, 7}));
  // Clearing it sends null at once.
  auto cleared = h.select(d, std::nullopt);
  ASSERT_EQ(cleared.size(), 1U);
  EXPECT_TRUE(cleared[0]["p"].is_null());
  EXPECT_EQ(cleared[0]["pv"], 2);
}

TEST(ClientPresence, RemoteSelectionIsMovedThroughOurInflightAndPendingEdits) {
  harness h;
  doc_entry& d = h.ready(1, "abcdef");
  h.submit(d, {C::insert("XY")});             // in flight
  h.submit(d, {C::skip(5), C::insert("Z")});  // pending, at the remote caret's place
  h.presence("p1", "alice", 0, 1, range(3, 2));
  ASSERT_EQ(h.seen.size(), 1U);
  EXPECT_EQ(h.seen[0].kind, presence_kind::joined);
  EXPECT_EQ(h.seen[0].presence.src, "alice");
  // "XYabcZdef": anchor 3 -> 5 past XY; our Z at 5 (not the owner's insert) does not carry it; focus 5 -> 8.
  EXPECT_EQ(h.seen[0].presence.selection, (ot::selection{5, 8}));
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{5, 8}));
  // Acknowledged: the same place on the same text.
  h.ack(1, 1);
  h.ack(2, 2);
  EXPECT_EQ(d.replica->text().to_string(), "XYabcZdef");
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{5, 8}));
}

TEST(ClientPresence, TheOwnersOwnInsertCarriesItsCaretOthersDoNot) {
  harness h;
  doc_entry& d = h.ready(1, "abc");
  h.presence("p1", "alice", 0, 1, range(1));
  h.remote_op(1, "bob", json::array({1, "B"}));  // at alice's caret, not hers: stays
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{1, 1}));
  h.remote_op(2, "alice", json::array({1, "A"}));  // hers: the caret follows
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{2, 2}));
  EXPECT_EQ(d.replica->text().to_string(), "aABbc");
  EXPECT_EQ(h.seen.size(), 1U);  // moves are not reported one by one
}

TEST(ClientPresence, APresenceAheadOfUsWaitsUntilWeReachItsVersion) {
  harness h;
  doc_entry& d = h.ready(1, "abc");
  h.presence("p1", "alice", 0, 3, range(5));
  EXPECT_TRUE(h.core.remote_presences(d).empty());
  EXPECT_TRUE(h.seen.empty());
  h.presence("p1", "alice", 1, 3, range(4));  // the latest per id
  EXPECT_EQ(d.presence->waits.size(), 1U);
  h.remote_op(1, "alice", json::array({"12"}));
  EXPECT_TRUE(h.core.remote_presences(d).empty());
  h.remote_op(2, "bob", json::array({"3"}));
  ASSERT_EQ(h.seen.size(), 1U);
  EXPECT_EQ(h.seen[0].presence.selection, (ot::selection{4, 4}));
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{4, 4}));
  EXPECT_TRUE(d.presence->waits.empty());
}

TEST(ClientPresence, AnOlderPresenceIsMovedThroughTheOpsSinceItsVersion) {
  harness h;
  doc_entry& d = h.ready(1, "abc");
  h.remote_op(1, "alice", json::array({1, "A"}));
  h.remote_op(2, "bob", json::array({1, "B"}));
  // Sent at version 1 with the caret at 1: alice's own insert carries it (2), bob's before it moves it (3).
  h.presence("p1", "alice", 0, 1, range(1));
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{3, 3}));
  EXPECT_EQ(d.replica->text().to_string(), "aBAbc");
}

TEST(ClientPresence, APresenceOlderThanTheKeptOpsIsDroppedAndAskedAgain) {
  client_core_options options;
  options.presence_history = 1;
  harness h(options);
  doc_entry& d = h.ready(1, "abc");
  h.remote_op(1, "alice", json::array({"x"}));
  h.remote_op(2, "alice", json::array({"y"}));
  auto sent = h.presence("p1", "alice", 0, 1, range(0));
  EXPECT_TRUE(h.core.remote_presences(d).empty());
  EXPECT_EQ(d.presence->dropped, 1U);
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0], (json{{"a", "pr"}, {"ch", "docs.d"}}));
  EXPECT_TRUE(h.presence("p2", "bob", 0, 1, range(0)).empty());  // once per version
  h.presence("p1", "alice", 1, 2, range(0));                     // still within the one kept op
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{1, 1}));
}

TEST(ClientPresence, LeavesStaleVersionsAndOurOwnEcho) {
  harness h;
  doc_entry& d = h.ready(1, "abcdef");
  h.presence("p1", "alice", 3, 1, range(2));
  h.presence("p1", "alice", 2, 1, range(4));  // older pv: ignored
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{2, 2}));
  h.presence("p1", "alice", 4, 1, range(5, -3));  // a backwards selection
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{5, 2}));
  ASSERT_EQ(h.seen.size(), 2U);
  EXPECT_EQ(h.seen[1].kind, presence_kind::updated);
  h.select(d, ot::selection{1, 1});
  h.presence(d.presence->local_id, "me-alias", 0, 1, range(1));  // our echo: not a remote presence
  EXPECT_EQ(h.core.remote_presences(d).size(), 1U);
  h.feed({{"a", "p"},
          {"ch", "docs.d"},
          {"id", d.presence->local_id},
          {"pv", 1},
          {"error", {{"code", "ERR_PRESENCE_TOO_LARGE"}, {"message", "too big"}}}});
  ASSERT_EQ(h.events.errors.size(), 1U);
  EXPECT_EQ(h.events.errors[0].code, "ERR_PRESENCE_TOO_LARGE");
  h.presence("p1", "alice", 5, 1, nullptr);
  EXPECT_TRUE(h.core.remote_presences(d).empty());
  ASSERT_EQ(h.seen.size(), 3U);
  EXPECT_EQ(h.seen[2].kind, presence_kind::left);
  EXPECT_EQ(h.seen[2].presence.id, "p1");
  EXPECT_FALSE(h.seen[2].presence.selection);
}

TEST(ClientPresence, OtherValuesAreShownWithoutARange) {
  harness h;
  doc_entry& d = h.ready(1, "abc");
  h.presence("p1", "alice", 0, 1, "just a name");
  h.presence("p2", "bob", 0, 1, {{"index", -1}});
  auto all = h.core.remote_presences(d);
  ASSERT_EQ(all.size(), 2U);
  EXPECT_FALSE(all[0].selection);
  EXPECT_FALSE(all[1].selection);
}

TEST(ClientPresence, OtherMembersOfTheValueTravelAsData) {
  harness h;
  doc_entry& d = h.ready(1, "abcdef");
  h.presence("p1", "alice", 0, 1, {{"index", 1}, {"length", 2}, {"name", "Ada"}, {"color", "#c33"}});
  ASSERT_EQ(h.seen.size(), 1U);
  EXPECT_EQ(json::parse(h.seen[0].presence.data), (json{{"name", "Ada"}, {"color", "#c33"}}));
  h.presence("p1", "alice", 1, 1, {{"index", 1}, {"length", 2}, {"name", "Ada L."}});  // same range, new data
  ASSERT_EQ(h.seen.size(), 2U);
  EXPECT_EQ(h.seen[1].kind, presence_kind::updated);
  EXPECT_EQ(json::parse(h.core.remote_presences(d)[0].data), (json{{"name", "Ada L."}}));
  h.presence("p2", "bob", 0, 1, {{"index", 0}});
  EXPECT_EQ(h.core.remote_presences(d)[1].data, "{}");
  h.presence("p3", "carol", 0, 1, "just a name");
  EXPECT_EQ(h.core.remote_presences(d)[2].data, "\"just a name\"");

  // Ours: the members go with the range (index/length in them are ours).
  client_core::outbox out;
  EXPECT_FALSE(h.core.set_selection(d, ot::selection{4, 2}, R"({"name":"Me","index":99})", out, h.events));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(json::parse(out[0])["p"], (json{{"name", "Me"}, {"index", 4}, {"length", -2}}));
  out.clear();
  EXPECT_EQ(h.core.set_selection(d, ot::selection{1, 1}, "[1]", out, h.events),
            std::make_error_code(std::errc::invalid_argument));
  EXPECT_EQ(h.core.set_selection(d, ot::selection{1, 1}, "{nope", out, h.events),
            std::make_error_code(std::errc::invalid_argument));
  EXPECT_EQ(h.core.set_selection(d, ot::selection{1, 1}, R"({"x":")" + std::string(5000, 'x') + R"("})", out, h.events),
            std::make_error_code(std::errc::message_size));
  EXPECT_EQ(h.core.set_selection(d, ot::selection{1, 9}, {}, out, h.events),
            std::make_error_code(std::errc::result_out_of_range));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(d.presence->local, (ot::selection{4, 2}));  // unchanged by the refusals
  // After an edit and a pr, the data still goes with it.
  h.submit(d, {C::insert("Z")});
  h.ack(1, 1);
  auto again = only(h.feed({{"a", "pr"}, {"ch", "docs.d"}}), "p");
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0]["p"], (json{{"name", "Me"}, {"index", 5}, {"length", -2}}));
}

TEST(ClientPresence, BoundedInCountAndSize) {
  client_core_options options;
  options.max_remote_presences = 2;
  options.max_presence_bytes = 100;
  harness h(options);
  doc_entry& d = h.ready(1, "abc");
  h.presence("p1", "a", 0, 1, range(0));
  h.presence("p2", "b", 0, 5, range(0));  // waiting counts too
  h.presence("p3", "c", 0, 1, range(0));
  EXPECT_EQ(d.presence->dropped, 1U);
  h.presence("p1", "a", 1, 1, range(2));  // a known one still moves
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{2, 2}));
  json big = range(1);
  big["name"] = std::string(200, 'x');
  h.presence("p1", "a", 2, 1, big);
  EXPECT_EQ(d.presence->dropped, 2U);
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{2, 2}));
  h.presence("p2", "b", 1, 1, nullptr);  // a leave frees a place
  h.presence("p3", "c", 1, 1, range(3));
  EXPECT_EQ(h.view(d, "p3"), (ot::selection{3, 3}));
}

TEST(ClientPresence, ResendRequestsSendOursAgain) {
  harness h;
  doc_entry& d = h.ready(1, "abc");
  h.select(d, ot::selection{1, 2});
  auto again = only(h.feed({{"a", "pr"}, {"ch", "docs.d"}}), "p");
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0]["pv"], 1);
  EXPECT_EQ(again[0]["p"], range(1, 1));
  EXPECT_TRUE(h.feed({{"a", "pr"}}).empty());  // the reply to a pr of ours
  h.select(d, std::nullopt);
  EXPECT_TRUE(h.feed({{"a", "pr"}, {"ch", "docs.d"}}).empty());  // nothing to show
}

TEST(ClientPresence, DisconnectReportsLeavesAndTheReconnectSendsOursAgain) {
  harness h;
  doc_entry& d = h.ready(1, "abc");
  h.select(d, ot::selection{1, 2});
  h.presence("p1", "alice", 0, 1, range(3));
  h.events = {};
  h.core.on_disconnected(h.events);
  ASSERT_EQ(h.events.presences.size(), 1U);
  EXPECT_EQ(h.events.presences[0].second.kind, presence_kind::left);
  EXPECT_TRUE(h.core.remote_presences(d).empty());
  auto sent = h.connect();
  auto ps = only(sent, "ps");
  ASSERT_EQ(ps.size(), 1U);
  EXPECT_TRUE(only(sent, "p").empty());  // not subscribed to the document yet
  h.feed({{"a", "s"}, {"c", "docs"}, {"d", "d"}, {"data", nullptr}});
  auto ours = only(h.feed({{"a", "ps"}, {"ch", "docs.d"}, {"seq", ps[0]["seq"]}}), "p");
  ASSERT_EQ(ours.size(), 1U);
  EXPECT_EQ(ours[0]["id"], d.presence->local_id);
  EXPECT_EQ(ours[0]["p"], range(1, 1));
  h.presence("p1", "alice", 1, 1, range(3));
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{3, 3}));
}

TEST(ClientPresence, DeleteAndReloadClearThem) {
  harness h;
  doc_entry& d = h.ready(1, "abc");
  h.select(d, ot::selection{1, 1});
  h.presence("p1", "alice", 0, 1, range(3));
  h.feed({{"a", "op"}, {"c", "docs"}, {"d", "d"}, {"v", 1}, {"src", "x"}, {"seq", 1}, {"del", true}});
  EXPECT_TRUE(h.core.remote_presences(d).empty());
  EXPECT_FALSE(d.presence->local);
  ASSERT_EQ(h.seen.size(), 2U);
  EXPECT_EQ(h.seen[1].kind, presence_kind::left);
}

TEST(ClientPresence, AReloadClearsTheirsAsksForThemAgainAndSendsOursWithinTheNewText) {
  harness h;
  doc_entry& d = h.ready(1, "abcdef");
  h.select(d, ot::selection{5, 5});
  h.presence("p1", "alice", 0, 1, range(3));
  h.submit(d, {C::insert("X")});  // in flight, then rejected
  EXPECT_EQ(d.presence->local, (ot::selection{6, 6}));
  auto fetch = h.feed({{"a", "op"},
                       {"c", "docs"},
                       {"d", "d"},
                       {"seq", 1},
                       {"error", {{"code", "ERR_OP_SUBMIT_REJECTED"}, {"message", "no"}}}});
  ASSERT_EQ(fetch.size(), 1U);
  EXPECT_EQ(fetch[0]["a"], "f");
  auto sent = h.feed({{"a", "f"}, {"c", "docs"}, {"d", "d"}, {"data", {{"v", 2}, {"data", "ab"}, {"type", uri}}}});
  EXPECT_TRUE(h.core.remote_presences(d).empty());
  ASSERT_EQ(h.seen.size(), 2U);
  EXPECT_EQ(h.seen[1].kind, presence_kind::left);
  auto pr = only(sent, "pr");
  ASSERT_EQ(pr.size(), 1U);
  auto ours = only(sent, "p");
  ASSERT_EQ(ours.size(), 1U);
  EXPECT_EQ(ours[0]["p"], range(2));
  EXPECT_EQ(ours[0]["v"], 2);
  h.presence("p1", "alice", 1, 2, range(1));  // sent again at the new version
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{1, 1}));
}

TEST(ClientPresence, KeptOpsAreShapesThatMoveCursorsAsTheOpsDo) {
  const ot::op edit{C::skip(2), C::insert("é😀x"), C::erase(3), C::skip(1), C::erase("ab")};
  const ot::op shape = presence_shape(edit);
  ASSERT_EQ(shape.size(), edit.size());
  for (std::size_t i = 0; i < shape.size(); ++i) {
    EXPECT_EQ(shape[i].kind(), edit[i].kind());
    EXPECT_EQ(shape[i].length(), edit[i].length());
    EXPECT_TRUE(shape[i].text().empty());
  }
  for (std::uint64_t at = 0; at < 12; ++at) {
    for (bool own : {false, true})
      EXPECT_EQ(ot::transform_selection({at, 11 - at}, shape, own), ot::transform_selection({at, 11 - at}, edit, own));
  }
}

TEST(ClientPresence, MalformedFramesAreIgnored) {
  harness h;
  doc_entry& d = h.ready(1, "abc");
  const char* frames[] = {
      R"({"a":"p"})",
      R"({"a":"p","ch":"docs.d"})",
      R"({"a":"p","ch":"docs.d","id":7,"p":{"index":1}})",
      R"({"a":"p","ch":"docs.d","id":"x","pv":-1,"p":{"index":1}})",
      R"({"a":"p","ch":"docs.d","id":"x","pv":1.5,"p":{"index":1}})",
      R"({"a":"p","ch":"docs.d","id":"x","v":"1","p":{"index":1}})",
      R"({"a":"p","ch":"docs.d","id":"x","v":1e300,"p":{"index":1}})",
      R"({"a":"p","ch":["docs.d"],"id":"x","p":{"index":1}})",
      R"({"a":"ps","seq":1})",
      R"({"a":"p","ch":"docs.d","id":"x","p":{"index":1)",
      R"({"a":"p","ch":"docs.d","id":"x","p":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})",
      "[]",
      "",
      R"({"a":"p","ch":"other.d","id":"x","p":{"index":1}})",
  };
  for (const char* f : frames) h.feed_text(f);
  EXPECT_TRUE(h.core.remote_presences(d).empty());
  // Out of range: clamped to the text.
  h.presence("p1", "alice", 0, 1, {{"index", 2}, {"length", 1000}});
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{2, 3}));
  h.presence("p1", "alice", 1, 1, {{"index", 9007199254740991ULL}, {"length", -9007199254740991LL}});
  EXPECT_EQ(h.view(d, "p1"), (ot::selection{3, 0}));
}

/// Random mutations of presence frames, ops and acks against one core: nothing throws or crashes,
/// and every view stays within the local text.
TEST(ClientPresence, FuzzedFramesKeepEveryViewOnTheText) {
  std::mt19937 rng(20261206);
  const std::string seeds[] = {
      R"({"a":"p","ch":"docs.d","src":"alice","id":"p1","p":{"index":2,"length":1},"pv":3,"c":"docs","d":"d","v":1,"t":"text-unicode"})",
      R"({"a":"p","ch":"docs.d","src":"bob","id":"p2","p":null,"pv":0,"c":"docs","d":"d","v":2})",
      R"({"a":"pr","ch":"docs.d"})",
      R"({"a":"ps","ch":"docs.d","seq":9})",
      R"({"a":"op","c":"docs","d":"d","v":1,"src":"alice","seq":4,"op":[1,"xy"]})",
      R"({"a":"op","c":"docs","d":"d","v":2,"src":"bob","seq":5,"op":[{"d":1}]})",
  };
  const std::string alphabet = R"({}[]":,0123456789-.eEnulltrfasp\ )";
  for (int round = 0; round < 300; ++round) {
    client_core_options options;
    options.max_remote_presences = 4;
    harness h(options);
    doc_entry& d = h.ready(1, "abcdef");
    for (int step = 0; step < 40; ++step) {
      std::string frame = seeds[rng() % std::size(seeds)];
      const int edits = static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !frame.empty(); ++e) {
        const std::size_t at = rng() % frame.size();
        switch (rng() % 3) {
          case 0:
            frame[at] = alphabet[rng() % alphabet.size()];
            break;
          case 1:
            frame.insert(at, 1, alphabet[rng() % alphabet.size()]);
            break;
          default:
            frame.erase(at, 1);
        }
      }
      if (rng() % 5 == 0 && d.replica) {
        const auto size = d.replica->text().size();
        h.submit(d, {C::skip(rng() % (size + 1)), C::insert("q")});
      }
      ASSERT_NO_THROW(h.feed_text(frame));
      ASSERT_NO_THROW((void)parse_presence_frame(frame));
      const std::uint64_t size = d.replica ? d.replica->text().size() : 0;
      auto all = h.core.remote_presences(d);
      EXPECT_LE(all.size() + d.presence->waits.size(), 4U + 0U);
      for (const auto& p : all) {
        if (!p.selection || !d.replica) continue;
        EXPECT_LE(p.selection->anchor, size);
        EXPECT_LE(p.selection->focus, size);
      }
    }
  }
}

}  // namespace
}  // namespace otsync::client
