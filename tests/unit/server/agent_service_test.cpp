// The agent over a fake document service: no Asio, no store, no documents.
// The fake records every call and the test answers it; the connection runs
// what was posted to it when the test says so.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "otsync/doc/service.hpp"
#include "otsync/oplog/error.hpp"
#include "otsync/protocol/errors.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/server/agent.hpp"
#include "otsync/store/store.hpp"

namespace otsync::server {
namespace {

using nlohmann::json;

const std::string text_uri = "http://sharejs.org/types/text-unicode";

// A connection whose strand is a queue the test runs.
class queued_io : public connection_io {
 public:
  void send(doc::shared_frame frame) override { frames.push_back(*frame); }
  void close(std::uint16_t code, std::string reason) override { closes.emplace_back(code, std::move(reason)); }
  void post(std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  void post_after(std::chrono::milliseconds, std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  void resume_reading() override {}

  void run() {
    while (!posted.empty()) {
      auto fn = std::move(posted.front());
      posted.pop_front();
      fn();
    }
  }
  /// The frames sent since the last call, parsed.
  std::vector<json> take() {
    std::vector<json> out;
    for (const auto& f : frames) out.push_back(json::parse(f));
    frames.clear();
    return out;
  }

  std::deque<std::function<void()>> posted;
  std::vector<std::string> frames;
  std::vector<std::pair<std::uint16_t, std::string>> closes;
};

class fake_service final : public doc::document_service {
 public:
  struct fetch_call {
    store::doc_key key;
    std::optional<std::uint64_t> from;
    doc::read_handler done;
  };
  struct subscribe_call {
    store::doc_key key;
    std::shared_ptr<doc::subscriber> who;
    std::optional<std::uint64_t> from;
    doc::read_handler done;
    doc::subscription_handle handle;
  };
  struct unsubscribe_call {
    doc::subscription_handle handle;
    const doc::subscriber* who;
  };
  struct submit_call {
    store::doc_key key;
    oplog::submission op;
    doc::submit_handler done;
  };
  struct snapshot_call {
    store::doc_key key;
    std::optional<std::uint64_t> version;
    std::optional<std::int64_t> timestamp_ms;
    doc::result_handler<oplog::snapshot> done;
  };

  void fetch(const store::doc_key& key, std::optional<std::uint64_t> from, doc::read_handler done,
             std::chrono::steady_clock::time_point) override {
    fetches.push_back({key, from, std::move(done)});
  }
  doc::subscription_handle subscribe(const store::doc_key& key, std::shared_ptr<doc::subscriber> who,
                                     std::optional<std::uint64_t> from, doc::read_handler done,
                                     std::chrono::steady_clock::time_point) override {
    doc::subscription_handle handle(std::make_shared<int>(static_cast<int>(subscribes.size())));
    subscribes.push_back({key, std::move(who), from, std::move(done), handle});
    return handle;
  }
  void unsubscribe(const doc::subscription_handle& handle, const doc::subscriber* who,
                   std::function<void()> done) override {
    unsubscribes.push_back({handle, who});
    if (done) done();
  }
  void transform_presence(const store::doc_key&, std::uint64_t version, std::string, std::optional<ot::selection> range,
                          doc::presence_handler done) override {
    done(doc::presence_result{std::nullopt, version, range, false});
  }
  void submit(const store::doc_key& key, oplog::submission op, doc::submit_handler done) override {
    submits.push_back({key, std::move(op), std::move(done)});
  }
  void snapshot_at(const store::doc_key& key, std::uint64_t version,
                   doc::result_handler<oplog::snapshot> done) override {
    snapshots.push_back({key, version, std::nullopt, std::move(done)});
  }
  void snapshot_at_time(const store::doc_key& key, std::int64_t timestamp_ms,
                        doc::result_handler<oplog::snapshot> done) override {
    snapshots.push_back({key, std::nullopt, timestamp_ms, std::move(done)});
  }
  void ops(const store::doc_key&, std::uint64_t, std::optional<std::uint64_t>,
           doc::result_handler<std::vector<oplog::op_record>> done) override {
    ADD_FAILURE() << "the agent reads no op ranges";
    done(store::errc::invalid_argument);
  }
  void list_documents(const std::string&, const std::string&, std::size_t,
                      doc::result_handler<std::vector<store::document_summary>> done) override {
    ADD_FAILURE() << "the agent lists no documents";
    done(store::errc::invalid_argument);
  }

  /// Whether an unsubscribe took `sub` off where it was subscribed.
  [[nodiscard]] int released(const subscribe_call& sub) const {
    int n = 0;
    for (const auto& u : unsubscribes) {
      if (u.handle.target() == sub.handle.target() && u.who == sub.who.get()) ++n;
    }
    return n;
  }

  std::vector<fetch_call> fetches;
  std::vector<subscribe_call> subscribes;
  std::vector<unsubscribe_call> unsubscribes;
  std::vector<submit_call> submits;
  std::vector<snapshot_call> snapshots;
};

oplog::snapshot text_snapshot(std::uint64_t version, std::string data) {
  return {version, text_uri, std::move(data), std::nullopt};
}

doc::read_result snapshot_result(std::uint64_t version, std::string data) {
  doc::read_result r;
  r.snap = text_snapshot(version, std::move(data));
  return r;
}

class AgentServiceTest : public ::testing::Test {
 protected:
  AgentServiceTest() : io_(std::make_shared<queued_io>()), agent_(service_, io_, "c1") {}

  std::vector<json> exchange(const json& request) {
    agent_.on_frame(request.dump());
    io_->run();
    return io_->take();
  }
  std::vector<json> answered() {
    io_->run();
    return io_->take();
  }
  /// The first subscription, to docs/d1, read and answered.
  void subscribe_d1() {
    ASSERT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
    ASSERT_EQ(service_.subscribes.size(), 1U);
    service_.subscribes[0].done(snapshot_result(1, "x"));
    ASSERT_EQ(answered().size(), 1U);
  }

  fake_service service_;  // outlives the agent, which unsubscribes when destroyed
  std::shared_ptr<queued_io> io_;
  agent agent_;
};

TEST_F(AgentServiceTest, SnapshotAtAVersionIsTheServicesSnapshot) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"nf","id":7,"c":"docs","d":"d1","v":3})")).empty());
  ASSERT_EQ(service_.snapshots.size(), 1U);
  auto& call = service_.snapshots[0];
  EXPECT_EQ(call.key, (store::doc_key{"docs", "d1"}));
  EXPECT_EQ(call.version, 3U);
  EXPECT_FALSE(call.timestamp_ms);
  call.done(text_snapshot(3, "abc"));
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], json::parse(R"({"a":"nf","id":7,"m":null,"v":3,"type":")" + text_uri + R"(","data":"abc"})"));
  EXPECT_TRUE(service_.fetches.empty());
}

TEST_F(AgentServiceTest, SnapshotAtATimeAsksTheServiceAndTheHeadIsAFetch) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"nt","id":8,"c":"docs","d":"d1","ts":1234.75})")).empty());
  ASSERT_EQ(service_.snapshots.size(), 1U);
  EXPECT_EQ(service_.snapshots[0].timestamp_ms, 1234);
  EXPECT_FALSE(service_.snapshots[0].version);
  service_.snapshots[0].done(oplog::snapshot{});
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0], json::parse(R"({"a":"nt","id":8,"m":null,"v":0,"type":null})"));

  // No time (or no version): the head, read like `f`.
  EXPECT_TRUE(exchange(json::parse(R"({"a":"nt","id":9,"c":"docs","d":"d1","ts":null})")).empty());
  ASSERT_EQ(service_.fetches.size(), 1U);
  EXPECT_FALSE(service_.fetches[0].from);
  service_.fetches[0].done(snapshot_result(5, "hello"));
  replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["v"], 5);
  EXPECT_EQ(replies[0]["data"], "hello");
  EXPECT_EQ(service_.snapshots.size(), 1U);
}

TEST_F(AgentServiceTest, FailedReadsOfThePastBecomeShareDbErrors) {
  struct expectation {
    std::error_code error;
    std::string code;
    std::string message;
  };
  const std::vector<expectation> cases = {
      {store::errc::unavailable, "ERR_DATABASE_UNAVAILABLE",
       "The document store failed: " + std::error_code(store::errc::unavailable).message()},
      {store::errc::closed, "ERR_DATABASE_UNAVAILABLE", "The server is shutting down"},
      {store::errc::corrupt, "ERR_DATABASE_CORRUPT",
       "Stored data does not decode: " + std::error_code(store::errc::corrupt).message()},
      {oplog::errc::version_from_the_future, "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT",
       "Requested version exceeds latest snapshot version"},
      // A replay failing on stored ops: corrupt data, with the replay's reason.
      {oplog::errc::version_mismatch, "ERR_DATABASE_CORRUPT", "Version mismatch"},
      {oplog::errc::doc_does_not_exist, "ERR_DATABASE_CORRUPT", "Document does not exist"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const bool by_time = i % 2 == 1;
    json request = by_time ? json{{"a", "nt"}, {"id", i}, {"c", "docs"}, {"d", "d1"}, {"ts", 100}}
                           : json{{"a", "nf"}, {"id", i}, {"c", "docs"}, {"d", "d1"}, {"v", 2}};
    EXPECT_TRUE(exchange(request).empty());
    ASSERT_EQ(service_.snapshots.size(), i + 1);
    service_.snapshots[i].done(cases[i].error);
    auto replies = answered();
    ASSERT_EQ(replies.size(), 1U) << i;
    EXPECT_EQ(replies[0]["error"], (json{{"code", cases[i].code}, {"message", cases[i].message}})) << i;
    EXPECT_EQ(replies[0]["a"], request["a"]);
    EXPECT_EQ(replies[0]["id"], i);
  }
  // The same mapping, on its own.
  for (const auto& c : cases) {
    auto info = protocol::to_read_error_info(c.error);
    EXPECT_EQ(info.code, c.code);
    EXPECT_EQ(info.message, c.message);
  }
}

TEST_F(AgentServiceTest, FetchAndSubmitGoThroughTheService) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"f","c":"docs","d":"d1"})")).empty());
  ASSERT_EQ(service_.fetches.size(), 1U);
  service_.fetches[0].done({protocol::error_info{"ERR_DATABASE_UNAVAILABLE", "down"}, std::nullopt, {}});
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"], (json{{"code", "ERR_DATABASE_UNAVAILABLE"}, {"message", "down"}}));

  EXPECT_TRUE(exchange(json::parse(R"({"a":"op","c":"docs","d":"d1","v":3,"seq":1,"op":[1,"b"],"x":{}})")).empty());
  ASSERT_EQ(service_.submits.size(), 1U);
  auto& submitted = service_.submits[0];
  EXPECT_EQ(submitted.key, (store::doc_key{"docs", "d1"}));
  EXPECT_EQ(submitted.op.src, "c1");
  EXPECT_EQ(submitted.op.seq, 1U);
  EXPECT_EQ(submitted.op.version, 3U);
  doc::submit_result result;
  result.missed.push_back(std::make_shared<const std::string>(R"({"a":"op","missed":true})"));
  result.src = "c1";
  result.seq = 1;
  result.version = 4;
  submitted.done(std::move(result));
  io_->run();
  ASSERT_EQ(io_->frames.size(), 2U);
  EXPECT_EQ(io_->frames[0], R"({"a":"op","missed":true})");
  EXPECT_EQ(io_->frames[1], protocol::encode_ack("docs", "d1", "c1", 1, 4));
}

TEST_F(AgentServiceTest, HeldBroadcastsFollowTheSubscribeReply) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 1U);
  auto& sub = service_.subscribes[0];
  const auto op = [](const char* frame, const char* src) {
    return std::make_shared<const doc::op_broadcast>(
        doc::op_broadcast{std::make_shared<const std::string>(frame), src});
  };
  sub.who->on_op(op("op from b", "b"));
  sub.who->on_op(op("own op", "c1"));  // the author gets the ack instead
  io_->run();
  EXPECT_TRUE(io_->frames.empty());
  sub.done(snapshot_result(1, "x"));
  io_->run();
  ASSERT_EQ(io_->frames.size(), 2U);
  EXPECT_EQ(json::parse(io_->frames[0])["a"], "s");
  EXPECT_EQ(io_->frames[1], "op from b");
}

TEST_F(AgentServiceTest, EverySubscriptionIsReleasedWhereItWasMade) {
  auto subscribe = [&](const char* d) { EXPECT_TRUE(exchange(json{{"a", "s"}, {"c", "docs"}, {"d", d}}).empty()); };
  subscribe("d1");
  subscribe("d2");
  EXPECT_TRUE(exchange(json::parse(R"({"a":"bs","c":"docs","b":["d3","d4"]})")).empty());
  subscribe("d5");
  ASSERT_EQ(service_.subscribes.size(), 5U);
  for (std::size_t i = 0; i < 4; ++i) service_.subscribes[i].done(snapshot_result(1, "x"));
  // Refused: the agent takes the subscriber back off at once.
  service_.subscribes[4].done({protocol::error_info{"ERR_DATABASE_UNAVAILABLE", "down"}, std::nullopt, {}});
  answered();
  EXPECT_EQ(agent_.subscriptions(), 4U);
  ASSERT_EQ(service_.unsubscribes.size(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[4]), 1);

  subscribe("d1");  // replaces the first subscription to d1 once read
  ASSERT_EQ(service_.subscribes.size(), 6U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);
  service_.subscribes[5].done(snapshot_result(1, "x"));
  answered();
  EXPECT_EQ(service_.released(service_.subscribes[0]), 1);
  EXPECT_EQ(exchange(json::parse(R"({"a":"u","c":"docs","d":"d2"})")).size(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 1);
  EXPECT_EQ(service_.unsubscribes.size(), 3U);
  subscribe("d3");  // still waiting for its read when the connection closes
  ASSERT_EQ(service_.subscribes.size(), 7U);

  agent_.on_closed();
  EXPECT_EQ(agent_.subscriptions(), 0U);
  for (std::size_t i = 0; i < service_.subscribes.size(); ++i) {
    EXPECT_EQ(service_.released(service_.subscribes[i]), 1) << i;
  }
  EXPECT_EQ(service_.unsubscribes.size(), service_.subscribes.size());
  // Answers arriving after the close are dropped.
  service_.subscribes[6].done(snapshot_result(1, "x"));
  EXPECT_TRUE(answered().empty());
}

TEST_F(AgentServiceTest, ABulkSubscriptionDroppedBeforeItsTurnIsOnlyRead) {
  // 20 documents: the agent reads 16 at a time, so the last 4 wait.
  json ids = json::array();
  for (int i = 0; i < 20; ++i) ids.push_back("d" + std::to_string(i));
  EXPECT_TRUE(exchange(json{{"a", "bs"}, {"c", "docs"}, {"b", ids}}).empty());
  ASSERT_EQ(service_.subscribes.size(), 16U);
  EXPECT_EQ(exchange(json{{"a", "bu"}, {"c", "docs"}, {"b", json::array({"d18", "d19"})}}).size(), 1U);
  EXPECT_TRUE(service_.unsubscribes.empty());  // not subscribed yet: nothing to take back
  for (std::size_t i = 0; i < 16; ++i) service_.subscribes[i].done(snapshot_result(1, "x"));
  io_->run();
  ASSERT_EQ(service_.subscribes.size(), 18U);
  ASSERT_EQ(service_.fetches.size(), 2U);
  EXPECT_EQ(service_.fetches[0].key.id, "d18");
  EXPECT_EQ(service_.fetches[1].key.id, "d19");
  for (std::size_t i = 16; i < 18; ++i) service_.subscribes[i].done(snapshot_result(1, "x"));
  for (auto& f : service_.fetches) f.done(snapshot_result(1, "x"));
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["data"].size(), 20U);
  EXPECT_EQ(agent_.subscriptions(), 18U);
}

TEST_F(AgentServiceTest, AMapFormBulkSubscribeThatFailsForOneDocumentSubscribesNone) {
  // As ShareDB: the client takes the error for every document named, so none stays subscribed.
  EXPECT_TRUE(exchange(json::parse(R"({"a":"bs","c":"docs","b":{"d1":1,"d2":1,"d3":1}})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 3U);
  const auto op = [](const char* frame) {
    return std::make_shared<const doc::op_broadcast>(
        doc::op_broadcast{std::make_shared<const std::string>(frame), "b", 1});
  };
  service_.subscribes[0].who->on_op(op(R"({"a":"op","c":"docs","d":"d1","v":1})"));  // held until the reply
  io_->run();
  service_.subscribes[0].done(snapshot_result(1, "x"));
  service_.subscribes[1].done({protocol::error_info{"ERR_DATABASE_UNAVAILABLE", "down"}, std::nullopt, {}});
  service_.subscribes[2].done(snapshot_result(1, "y"));
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);  // the error, and not the op held for d1
  EXPECT_EQ(replies[0]["a"], "bs");
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(agent_.subscriptions(), 0U);
  for (const auto& sub : service_.subscribes) EXPECT_EQ(service_.released(sub), 1) << sub.key.id;
  // Later broadcasts to those subscriptions are not sent either.
  service_.subscribes[2].who->on_op(op(R"({"a":"op","c":"docs","d":"d3","v":1})"));
  EXPECT_TRUE(answered().empty());
  // The client can subscribe again.
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  service_.subscribes.back().done(snapshot_result(2, "xx"));
  EXPECT_EQ(answered().size(), 1U);
  EXPECT_EQ(agent_.subscriptions(), 1U);
}

doc::shared_broadcast broadcast(const char* doc_id, std::uint64_t version);

TEST_F(AgentServiceTest, AFailedMapFormBulkSubscribeKeepsTheDocumentsSubscribedBefore) {
  // ShareDB keeps the stream of a document subscribed before the request (and the client still
  // counts it as subscribed): it stays, and delivered all along, so the ops read for the request
  // are not needed; the request's own subscriptions go.
  ASSERT_NO_FATAL_FAILURE(subscribe_d1());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"bs","c":"docs","b":{"d1":1,"d2":1}})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 3U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);  // replaced by the request's once all are read
  doc::read_result caught_up;
  caught_up.ops.push_back(
      std::make_shared<const std::string>(R"({"a":"op","c":"docs","d":"d1","v":1,"src":"b","seq":1,"op":["y"]})"));
  service_.subscribes[1].done(std::move(caught_up));
  // An op while the request waits for d2: the first subscription still delivers it.
  for (std::size_t i : {0U, 1U}) service_.subscribes[i].who->on_op(broadcast("d1", 1));
  service_.subscribes[2].done({protocol::error_info{"ERR_DATABASE_UNAVAILABLE", "down"}, std::nullopt, {}});
  auto replies = answered();
  ASSERT_EQ(replies.size(), 2U) << json(replies);
  EXPECT_EQ(replies[0]["a"], "op");
  EXPECT_EQ(replies[0]["v"], 1);
  EXPECT_EQ(replies[1]["error"]["code"], "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(agent_.subscriptions(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 1);
  EXPECT_EQ(service_.released(service_.subscribes[2]), 1);
  for (std::size_t i : {0U, 1U}) service_.subscribes[i].who->on_op(broadcast("d1", 2));
  replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["v"], 2);
}

TEST_F(AgentServiceTest, AnArrayFormBulkSubscribeDropsOnlyTheDocumentThatFailed) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"bs","c":"docs","b":["d1","d2"]})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 2U);
  service_.subscribes[0].done(snapshot_result(1, "x"));
  service_.subscribes[1].done({protocol::error_info{"ERR_DATABASE_UNAVAILABLE", "down"}, std::nullopt, {}});
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["data"]["d2"]["error"]["code"], "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(replies[0]["data"]["d1"]["v"], 1);
  EXPECT_EQ(agent_.subscriptions(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 1);
}

doc::shared_broadcast broadcast(const char* doc_id, std::uint64_t version) {
  auto frame = json{{"a", "op"}, {"c", "docs"}, {"d", doc_id}, {"v", version}}.dump();
  return std::make_shared<const doc::op_broadcast>(
      doc::op_broadcast{std::make_shared<const std::string>(std::move(frame)), "b", version});
}

doc::read_result unavailable() {
  return {protocol::error_info{"ERR_DATABASE_UNAVAILABLE", "down"}, std::nullopt, {}};
}

// ShareDB keeps the old stream when a subscribe to a document already subscribed fails, and the
// client still counts it as subscribed: the old subscription keeps delivering, before and after.
TEST_F(AgentServiceTest, ASecondSubscribeThatFailsKeepsTheFirst) {
  ASSERT_NO_FATAL_FAILURE(subscribe_d1());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1","v":1})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 2U);
  // While the new one is read, the first one still delivers; the new one holds its copy.
  service_.subscribes[0].who->on_op(broadcast("d1", 1));
  service_.subscribes[1].who->on_op(broadcast("d1", 1));
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["v"], 1);
  service_.subscribes[1].done(unavailable());
  replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["a"], "s");
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(agent_.subscriptions(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 1);
  service_.subscribes[0].who->on_op(broadcast("d1", 2));
  replies = answered();
  ASSERT_EQ(replies.size(), 1U) << "the first subscription stopped delivering";
  EXPECT_EQ(replies[0]["v"], 2);
  // And an unsubscribe takes it off.
  EXPECT_EQ(exchange(json::parse(R"({"a":"u","c":"docs","d":"d1"})")).size(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 1);
  EXPECT_EQ(agent_.subscriptions(), 0U);
}

TEST_F(AgentServiceTest, ASecondSubscribeTakesOverOnceRead) {
  ASSERT_NO_FATAL_FAILURE(subscribe_d1());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1","v":1})")).empty());
  // A third while the second is still read: all three stay until read; the first still delivers.
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1","v":1})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 3U);
  EXPECT_TRUE(service_.unsubscribes.empty());
  for (auto& sub : service_.subscribes) sub.who->on_op(broadcast("d1", 1));
  EXPECT_EQ(answered().size(), 1U);
  service_.subscribes[1].done(snapshot_result(2, "xy"));  // takes over from the first
  auto replies = answered();
  ASSERT_EQ(replies.size(), 2U);
  EXPECT_EQ(replies[0]["a"], "s");
  EXPECT_EQ(replies[1]["v"], 1) << "the op held by the new subscription (a duplicate the client skips)";
  EXPECT_EQ(service_.released(service_.subscribes[0]), 1);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 0);
  service_.subscribes[2].done(snapshot_result(2, "xy"));  // and the third from the second
  replies = answered();
  ASSERT_EQ(replies.size(), 2U);
  EXPECT_EQ(replies[0]["a"], "s");
  EXPECT_EQ(service_.released(service_.subscribes[1]), 1);
  EXPECT_EQ(agent_.subscriptions(), 1U);
  for (auto& sub : service_.subscribes) sub.who->on_op(broadcast("d1", 2));
  replies = answered();
  ASSERT_EQ(replies.size(), 1U) << "sent once, by the newest subscription";
  EXPECT_EQ(replies[0]["v"], 2);
  agent_.on_closed();
  for (const auto& sub : service_.subscribes) EXPECT_EQ(service_.released(sub), 1) << sub.key.id;
}

// Three subscribes in flight at once: the one read takes over, and the others failing (older or
// newer) does not take it away: the client was told it is subscribed, and ops keep coming.
TEST_F(AgentServiceTest, OfThreeOverlappingSubscribesTheOneReadKeepsDelivering) {
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 3U);
  service_.subscribes[1].done(snapshot_result(1, "x"));
  EXPECT_EQ(answered().size(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 1);  // older: taken over
  service_.subscribes[0].done(unavailable());
  service_.subscribes[2].done(unavailable());
  auto replies = answered();
  ASSERT_EQ(replies.size(), 2U);
  for (const auto& r : replies) EXPECT_EQ(r["error"]["code"], "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(agent_.subscriptions(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 0);
  EXPECT_EQ(service_.released(service_.subscribes[2]), 1);
  for (auto& sub : service_.subscribes) sub.who->on_op(broadcast("d1", 1));
  replies = answered();
  ASSERT_EQ(replies.size(), 1U) << "nothing delivers: the client believes it is subscribed";
  EXPECT_EQ(replies[0]["v"], 1);
  agent_.on_closed();
  for (const auto& sub : service_.subscribes) EXPECT_EQ(service_.released(sub), 1) << sub.key.id;
}

// The first subscribe's reply (sent once it is read) tells the client it is subscribed, whatever
// becomes of a second one sent before that reply.
TEST_F(AgentServiceTest, AnOlderSubscribeReadStaysWhenANewerOneFails) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 2U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);
  service_.subscribes[0].done(snapshot_result(1, "x"));
  EXPECT_EQ(answered().size(), 1U);
  service_.subscribes[1].done(unavailable());
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(agent_.subscriptions(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 1);
  service_.subscribes[0].who->on_op(broadcast("d1", 1));
  EXPECT_EQ(answered().size(), 1U) << "the first subscription stopped delivering";
}

TEST_F(AgentServiceTest, TwoSubscribesThatBothFailLeaveNone) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  service_.subscribes[0].done(unavailable());
  EXPECT_EQ(answered().size(), 1U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 1);
  service_.subscribes[1].done(unavailable());
  EXPECT_EQ(answered().size(), 1U);
  EXPECT_EQ(agent_.subscriptions(), 0U);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 1);
  EXPECT_EQ(service_.unsubscribes.size(), 2U);
}

// A bulk subscription read but not yet answered (its request waits for another document) stays
// when a newer subscribe fails.
TEST_F(AgentServiceTest, ASubscribeFailingWhileABulkReplyWaitsKeepsTheBulkSubscription) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"bs","c":"docs","b":{"d1":1,"d2":1}})")).empty());
  service_.subscribes[0].done(snapshot_result(1, "x"));
  EXPECT_TRUE(answered().empty());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 3U);
  service_.subscribes[2].done(unavailable());
  EXPECT_EQ(answered().size(), 1U);
  service_.subscribes[1].done(snapshot_result(1, "y"));
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["a"], "bs");
  EXPECT_FALSE(replies[0].contains("error")) << replies[0];
  EXPECT_EQ(agent_.subscriptions(), 2U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);
  service_.subscribes[0].who->on_op(broadcast("d1", 1));
  EXPECT_EQ(answered().size(), 1U);
}

// The client takes a failed map-form bulk subscribe's error for each document: one it had not
// subscribed to before does not stay, whatever a newer subscribe does.
TEST_F(AgentServiceTest, AFailedMapFormBulkSubscriptionDoesNotStay) {
  EXPECT_TRUE(exchange(json::parse(R"({"a":"bs","c":"docs","b":{"d1":1,"d2":1}})")).empty());
  service_.subscribes[0].done(snapshot_result(1, "x"));
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 3U);
  service_.subscribes[1].done(unavailable());
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["error"]["code"], "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(service_.released(service_.subscribes[0]), 1);
  service_.subscribes[2].done(unavailable());
  EXPECT_EQ(answered().size(), 1U);
  EXPECT_EQ(agent_.subscriptions(), 0U);
  service_.subscribes[0].who->on_op(broadcast("d1", 1));
  EXPECT_TRUE(answered().empty());
}

// Each subscribe of a document takes every op of it once more until it is read: a connection has
// at most agent::max_live_subscriptions_per_document of one document at once, `s` or `bs`.
TEST_F(AgentServiceTest, SubscriptionsOfOneDocumentAtOnceAreBounded) {
  constexpr auto limit = agent::max_live_subscriptions_per_document;
  for (std::size_t i = 0; i < limit; ++i) {
    EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"hot"})")).empty());
  }
  auto refused = exchange(json::parse(R"({"a":"s","c":"docs","d":"hot"})"));
  ASSERT_EQ(refused.size(), 1U);
  EXPECT_EQ(refused[0]["error"]["code"], "ERR_SUBSCRIPTION_LIMIT_EXCEEDED");
  refused = exchange(json::parse(R"({"a":"bs","c":"docs","b":{"other":1,"hot":1}})"));
  ASSERT_EQ(refused.size(), 1U);
  EXPECT_EQ(refused[0]["error"]["code"], "ERR_SUBSCRIPTION_LIMIT_EXCEEDED");
  refused = exchange(json::parse(R"({"a":"bs","c":"docs","b":["other","hot"]})"));
  ASSERT_EQ(refused.size(), 1U);
  EXPECT_EQ(refused[0]["error"]["code"], "ERR_SUBSCRIPTION_LIMIT_EXCEEDED");
  EXPECT_EQ(service_.subscribes.size(), limit) << "a refused request subscribes nothing";
  EXPECT_EQ(agent_.subscriptions(), 1U);
  // Once the last one is read it takes over from the others: room again.
  service_.subscribes.back().done(snapshot_result(1, "x"));
  EXPECT_EQ(answered().size(), 1U);
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"hot"})")).empty());
  EXPECT_EQ(service_.subscribes.size(), limit + 1);
}

TEST_F(AgentServiceTest, ClosingDuringATakeOverReleasesBothOnce) {
  ASSERT_NO_FATAL_FAILURE(subscribe_d1());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d1"})")).empty());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d2"})")).empty());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"s","c":"docs","d":"d2"})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 4U);
  EXPECT_TRUE(service_.unsubscribes.empty());
  agent_.on_closed();
  for (const auto& sub : service_.subscribes) EXPECT_EQ(service_.released(sub), 1) << sub.key.id;
  EXPECT_EQ(service_.unsubscribes.size(), 4U);
  for (auto& sub : service_.subscribes) sub.done(snapshot_result(1, "x"));
  EXPECT_TRUE(answered().empty());
  EXPECT_EQ(service_.unsubscribes.size(), 4U);
}

TEST_F(AgentServiceTest, AFailedArrayFormBulkSubscribeKeepsTheEarlierSubscription) {
  ASSERT_NO_FATAL_FAILURE(subscribe_d1());
  EXPECT_TRUE(exchange(json::parse(R"({"a":"bs","c":"docs","b":["d1","d2"]})")).empty());
  ASSERT_EQ(service_.subscribes.size(), 3U);
  service_.subscribes[1].done(unavailable());
  service_.subscribes[2].done(snapshot_result(1, "y"));
  auto replies = answered();
  ASSERT_EQ(replies.size(), 1U);
  EXPECT_EQ(replies[0]["data"]["d1"]["error"]["code"], "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(agent_.subscriptions(), 2U);
  EXPECT_EQ(service_.released(service_.subscribes[0]), 0);
  EXPECT_EQ(service_.released(service_.subscribes[1]), 1);
  service_.subscribes[0].who->on_op(broadcast("d1", 1));
  EXPECT_EQ(answered().size(), 1U);
}

}  // namespace
}  // namespace otsync::server
