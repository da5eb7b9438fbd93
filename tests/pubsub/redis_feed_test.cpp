// The op feed conformance suite on Redis pub/sub: instances, each with its own
// Redis store and feed (own instance id), sharing a real redis-server
// (tests/store/redis_server.hpp; skipped without one, failed under
// OTSYNC_REQUIRE_ALL_TESTS). Then what only a feed with a connection does:
// Redis stopped and restarted.
#include "otsync/pubsub/redis_op_feed.hpp"

#include <unistd.h>
#include <atomic>

#include "op_feed_conformance.hpp"
#include "otsync/store/redis_store.hpp"
#include "store/redis_server.hpp"

namespace otsync::pubsub::test {
namespace {

using store::test::redis_server;

/// A key prefix (so channels) no other test uses.
std::string fresh_prefix() {
  static std::atomic<int> counter{0};
  return "otsync-feed-test:" + std::to_string(::getpid()) + ":" + std::to_string(++counter) + ":";
}

store::redis_options options_for(std::uint16_t port, const std::string& prefix, const std::string& instance_id) {
  store::redis_options options;
  options.host = "127.0.0.1";
  options.port = port;
  options.key_prefix = prefix;
  options.instance_id = instance_id;
  options.command_timeout = 3000ms;  // roomy: the suite also runs under ASan on 2 cores
  options.connect_timeout = 1000ms;
  options.reconnect_min = 10ms;
  options.reconnect_max = 200ms;
  return options;
}

/// One redis-server for the whole binary, started on first use (from the main thread).
struct shared_server {
  redis_server server;
  std::string error;
};
shared_server& shared_redis() {
  static const std::unique_ptr<shared_server> shared = [] {
    auto s = std::make_unique<shared_server>();
    s->error = s->server.start();
    return s;
  }();
  return *shared;
}

struct redis_traits {
  struct shared {
    std::uint16_t port = 0;
    std::string prefix;
  };
  static std::string skip_reason() {
    return store::test::redis_tests_required ? "" : store::test::redis_missing_reason();
  }
  static std::unique_ptr<shared> open_shared() {
    auto& server = shared_redis();
    if (!server.error.empty()) {
      ADD_FAILURE() << "redis-server: " << server.error;
      return nullptr;
    }
    return std::make_unique<shared>(shared{server.server.port(), fresh_prefix()});
  }
  static backend::backend open_instance(shared& s, const std::string& instance_id) {
    const auto options = options_for(s.port, s.prefix, instance_id);
    backend::backend opened{store::open_redis_store(options), open_redis_op_feed(options), nullptr};
    auto* redis = dynamic_cast<store::redis_store*>(opened.store.get());
    EXPECT_TRUE(eventually([&] { return redis->connected(); })) << "store not connected";
    return opened;
  }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Redis, OpFeedConformance, ::testing::Types<redis_traits>);

namespace {

// Redis of the test's own, to stop and restart.
class RedisFeedOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    OTSYNC_REQUIRE_REDIS_SERVER();
    ASSERT_EQ(server_.start(), "");
  }
  backend::backend open(const std::string& instance_id) {
    auto options = options_for(server_.port(), prefix_, instance_id);
    options.command_timeout = 500ms;
    options.connect_timeout = 300ms;
    options.reconnect_max = 100ms;
    return {store::open_redis_store(options), open_redis_op_feed(options), nullptr};
  }

  redis_server server_;
  const std::string prefix_ = fresh_prefix();
};

TEST_F(RedisFeedOutage, RedisRestartedTheFeedReconnectsAndResyncs) {
  auto writer = open("writer");
  auto reader = open("reader");
  ASSERT_TRUE(eventually([&] { return reader.feed->connected(); }));
  recorder got;
  doc_history doc{{"c", "outage"}};
  reader.feed->subscribe(doc.key, got.on_op(), got.on_resync());
  ASSERT_TRUE(got.wait_resyncs(1));
  const auto connects_before = reader.feed->stats().connects;

  server_.stop();
  EXPECT_TRUE(eventually([&] { return !reader.feed->connected(); }, 5000ms)) << "connected() still true";
  EXPECT_FALSE(reader.feed->health().connected);
  std::this_thread::sleep_for(300ms);  // a few failed reconnects
  EXPECT_FALSE(reader.feed->connected()) << "connected while Redis is down";

  ASSERT_EQ(server_.restart(), "");
  ASSERT_TRUE(eventually([&] { return reader.feed->connected(); })) << "no reconnect";
  EXPECT_TRUE(got.wait_resyncs(2)) << "no resync after the reconnect: ops of the outage would be missed";
  EXPECT_GT(reader.feed->stats().connects, connects_before);

  // Delivery goes on over the new connection.
  auto* store = dynamic_cast<store::redis_store*>(writer.store.get());
  ASSERT_TRUE(eventually([&] { return store->connected(); })) << "store did not reconnect";
  auto create = doc.next(oplog::create_body{std::string(store::test::text_type), ""}, false, 1, "w");
  ASSERT_EQ(store::test::commit(*writer.store, create), std::error_code{});
  doc.accept(create);
  ASSERT_TRUE(got.wait_ops(1));
  EXPECT_EQ(got.ops(), doc.log);
}

TEST_F(RedisFeedOutage, AResyncMessageMakesSubscribersReadTheLog) {
  // What a store with --redis-min-replicas publishes when it acknowledges a commit confirmed late
  // (its op may never have been published); another instance's tag, as the store sends it.
  auto reader = open("reader");
  ASSERT_TRUE(eventually([&] { return reader.feed->connected(); }));
  recorder got;
  doc_history doc{{"c", "late-confirmed"}};
  reader.feed->subscribe(doc.key, got.on_op(), got.on_resync());
  ASSERT_TRUE(got.wait_resyncs(1));
  const auto channel = store::redis_op_channel(options_for(server_.port(), prefix_, "reader"), doc.key);
  auto tagged = store::redis_publisher_tag(options_for(server_.port(), prefix_, "writer")) + "resync";
  ASSERT_TRUE(server_.command({"PUBLISH", channel, tagged}));
  EXPECT_TRUE(got.wait_resyncs(2));
  // Its own instance's (tagged as itself) is skipped, like its own ops.
  auto own = store::redis_publisher_tag(options_for(server_.port(), prefix_, "reader")) + "resync";
  ASSERT_TRUE(server_.command({"PUBLISH", channel, own}));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(got.resyncs(), 2);
}

TEST_F(RedisFeedOutage, RedisDownAtStartIsNotAnError) {
  server_.stop();
  auto reader = open("reader");
  recorder got;
  reader.feed->subscribe({"c", "late"}, got.on_op(), got.on_resync());
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(reader.feed->connected());
  EXPECT_EQ(got.resyncs(), 0);
  ASSERT_EQ(server_.restart(), "");
  ASSERT_TRUE(eventually([&] { return reader.feed->connected(); }));
  // The subscription made while down is in place once connected.
  EXPECT_TRUE(got.wait_resyncs(1));
}

// The feed's values for /metrics keep the names otsyncd has always exported.
TEST_F(RedisFeedOutage, HealthNamesTheRedisFeedMetrics) {
  auto reader = open("reader");
  ASSERT_TRUE(eventually([&] { return reader.feed->connected(); }));
  const auto health = reader.feed->health();
  EXPECT_TRUE(health.connected);
  std::vector<std::string> names;
  for (const auto& value : health.values) names.emplace_back(value.name);
  EXPECT_EQ(names, (std::vector<std::string>{"otsync_redis_feed_up", "otsync_redis_feed_messages_total",
                                             "otsync_redis_feed_resyncs_total", "otsync_redis_feed_connects_total",
                                             "otsync_redis_feed_own_skipped_total"}));
  const auto store_health = reader.store->health();
  names.clear();
  for (const auto& value : store_health.values) names.emplace_back(value.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"otsync_redis_up", "otsync_redis_commands_total", "otsync_redis_connects_total",
                                      "otsync_redis_timeouts_total", "otsync_redis_master_switches_total",
                                      "otsync_redis_redirects_total", "otsync_redis_unreplicated_commits_total"}));
}

}  // namespace
}  // namespace otsync::pubsub::test
