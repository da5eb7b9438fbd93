// The presence bus on a real redis-server (tests/store/redis_server.hpp;
// skipped without one, failed under OTSYNC_REQUIRE_ALL_TESTS): instances hear
// each other's payloads and never their own, a first subscription is told
// apart from a renewed one (a renewal clears what others showed: messages may
// have been missed), a channel left while Redis was away is new when joined
// again, and a goodbye reports the instance lost at once.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "otsync/pubsub/presence_bus.hpp"
#include "store/redis_server.hpp"
#include "store/redis_store_support.hpp"

namespace otsync::pubsub::test {
namespace {

using namespace std::chrono_literals;
using store::test::eventually;
using store::test::redis_server;

/// What one bus's handlers were told, in order (they run on the bus's thread).
class heard {
 public:
  presence_bus_handlers handlers() {
    return {[this](std::string_view channel, std::string_view instance, std::string_view payload) {
              std::lock_guard lock(mutex_);
              messages_.emplace_back(std::string(channel), std::string(instance), std::string(payload));
            },
            [this](std::string_view channel, bool reconnected) {
              std::lock_guard lock(mutex_);
              subscribed_.emplace_back(std::string(channel), reconnected);
            },
            [this](std::string_view instance) {
              std::lock_guard lock(mutex_);
              lost_.emplace_back(instance);
            },
            [](std::string_view) {}};
  }
  std::vector<std::tuple<std::string, std::string, std::string>> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  std::vector<std::pair<std::string, bool>> subscribed() const {
    std::lock_guard lock(mutex_);
    return subscribed_;
  }
  /// Forgets what was told so far.
  void clear() {
    std::lock_guard lock(mutex_);
    messages_.clear();
    subscribed_.clear();
    lost_.clear();
  }
  std::vector<std::string> lost() const {
    std::lock_guard lock(mutex_);
    return lost_;
  }
  bool subscribed_to(const std::string& channel, bool reconnected) const {
    std::lock_guard lock(mutex_);
    return std::find(subscribed_.begin(), subscribed_.end(), std::pair{channel, reconnected}) != subscribed_.end();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::tuple<std::string, std::string, std::string>> messages_;
  std::vector<std::pair<std::string, bool>> subscribed_;
  std::vector<std::string> lost_;
};

class RedisPresenceBus : public ::testing::Test {
 protected:
  void SetUp() override {
    OTSYNC_REQUIRE_REDIS_SERVER();
    ASSERT_EQ(server_.start(), "");
  }

  /// A bus of instance `id`; `lease` sets the heartbeat (a quarter of it) and the unsubscribe grace.
  std::unique_ptr<presence_bus> open(const std::string& id, heard& to, std::chrono::milliseconds lease) {
    store::redis_options options;
    options.host = "127.0.0.1";
    options.port = server_.port();
    options.key_prefix = "otsync-presence-bus-test:" + std::to_string(::getpid()) + ":";
    options.instance_id = id;
    options = store::test::with_test_timeouts(options);
    options.reconnect_max = 50ms;
    auto bus = open_redis_presence_bus(options, presence_bus_options{lease, 1000});
    bus->start(to.handlers());
    return bus;
  }

  redis_server server_;
};

TEST_F(RedisPresenceBus, InstancesHearEachOtherButNotThemselves) {
  heard a_heard;
  heard b_heard;
  auto a = open("A", a_heard, 2000ms);
  auto b = open("B", b_heard, 2000ms);
  a->join("doc.x");
  b->join("doc.x");
  ASSERT_TRUE(eventually([&] { return a_heard.subscribed_to("doc.x", false); }, 5s));
  ASSERT_TRUE(eventually([&] { return b_heard.subscribed_to("doc.x", false); }, 5s));
  // Both publishers too: a message published before its connection is up is dropped (and reset).
  ASSERT_TRUE(eventually([&] { return a->health().connected && b->health().connected; }, 5s));
  a->publish("doc.x", "from A");
  b->publish("doc.x", "from B");
  ASSERT_TRUE(eventually([&] { return !b_heard.messages().empty() && !a_heard.messages().empty(); }, 5s));
  std::this_thread::sleep_for(100ms);  // anything echoed would be here by now
  EXPECT_EQ(b_heard.messages(),
            (std::vector<std::tuple<std::string, std::string, std::string>>{{"doc.x", "A", "from A"}}));
  EXPECT_EQ(a_heard.messages(),
            (std::vector<std::tuple<std::string, std::string, std::string>>{{"doc.x", "B", "from B"}}));
  EXPECT_EQ(a->stats().published, 1U);
  EXPECT_EQ(b->stats().received, 1U);
  // A goodbye: the other clears it at once, long before the lease.
  const auto stopped = std::chrono::steady_clock::now();
  b->stop();
  ASSERT_TRUE(eventually([&] { return a_heard.lost() == std::vector<std::string>{"B"}; }, 1500ms));
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, 1500ms);
}

TEST_F(RedisPresenceBus, ARenewedSubscriptionIsToldApartAndAChannelLeftWhileAwayIsNewAgain) {
  heard got;
  // A long lease: the unsubscribe grace (a quarter of it) outlasts the reconnect below.
  auto bus = open("A", got, 4000ms);
  bus->join("doc.kept");
  bus->join("doc.left");
  ASSERT_TRUE(
      eventually([&] { return got.subscribed_to("doc.kept", false) && got.subscribed_to("doc.left", false); }, 5s));
  server_.stop();
  ASSERT_TRUE(eventually([&] { return !bus->health().connected; }, 5s));
  // The bus may have reconnected while Redis was shutting down (renewing both channels then): only
  // what comes after the leave counts.
  std::this_thread::sleep_for(200ms);
  got.clear();
  bus->leave("doc.left");  // while Redis is away, and the grace has not run out when it is back
  ASSERT_EQ(server_.restart(), "");
  // The channel still joined is renewed: messages may have been missed on it.
  ASSERT_TRUE(eventually([&] { return got.subscribed_to("doc.kept", true); }, 5s));
  EXPECT_FALSE(got.subscribed_to("doc.left", true));
  // Joined again: a first subscription, not a renewal (nothing was shown on it since it was left).
  bus->join("doc.left");
  ASSERT_TRUE(eventually(
      [&] {
        auto all = got.subscribed();
        return std::count(all.begin(), all.end(), std::pair<std::string, bool>{"doc.left", false}) == 1;
      },
      5s));
  EXPECT_FALSE(got.subscribed_to("doc.left", true));
}

}  // namespace
}  // namespace otsync::pubsub::test
