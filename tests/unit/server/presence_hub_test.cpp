// The presence hub between instances, driven without Redis: a recording bus
// stands for the other instances (the real bus runs in
// tests/js/presence_cluster_test.js), members are inline connections, and the
// document mover is synchronous.
#include "otsync/server/presence_hub.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "otsync/server/agent.hpp"

namespace otsync::server {
namespace {

using json = nlohmann::json;

class recording_bus final : public pubsub::presence_bus {
 public:
  void start(pubsub::presence_bus_handlers) override {}
  void join(const std::string& channel) override { joined.push_back(channel); }
  void leave(const std::string& channel) override { left.push_back(channel); }
  void publish(const std::string& channel, std::string payload) override {
    published.emplace_back(channel, std::move(payload));
  }
  void stop() override {}
  pubsub::presence_bus_stats stats() const override { return {}; }
  store::backend_health health() const override { return {}; }

  std::vector<std::string> joined;
  std::vector<std::string> left;
  std::vector<std::pair<std::string, std::string>> published;
};

class inline_io final : public connection_io {
 public:
  void send(doc::shared_frame frame) override { frames.push_back(json::parse(*frame)); }
  void close(std::uint16_t, std::string) override {}
  void post(std::function<void()> fn) override { fn(); }
  void post_after(std::chrono::milliseconds, std::function<void()> fn) override { fn(); }
  void resume_reading() override {}
  std::vector<json> frames;
};

/// A `p` frame as another instance publishes it on the bus.
std::string remote_update(const std::string& src, const std::string& id, json value, std::uint64_t pv,
                          std::uint64_t v) {
  protocol::presence_update_request r;
  r.channel = "notes.a";
  r.id = id;
  r.pv = pv;
  r.value = std::move(value);
  r.collection = "notes";
  r.doc_id = "a";
  r.version = v;
  return "p\nreal-" + src + "\n" + protocol::encode_presence(r, src);
}

struct hub_fixture : ::testing::Test {
  hub_fixture() {
    presence_hub::options options;
    options.bus = &bus;
    options.max_remote_presences = 3;
    // This instance's copy is at version 10; a presence from before moves one code point right
    // per version (a stand-in for the ops), and a move of a range-less presence keeps its value.
    options.move = [this](const store::doc_key&, std::uint64_t version, std::string src,
                          std::optional<ot::selection> range, doc::presence_handler done) {
      moved_srcs.push_back(src);
      doc::presence_result result;
      result.version = std::max<std::uint64_t>(version, head);
      if (range && version < head) {
        result.range = ot::selection{range->anchor + (head - version), range->focus + (head - version)};
        result.moved = true;
      }
      if (pending_moves) {
        held.emplace_back([done, result] { done(result); });
      } else {
        done(result);
      }
    };
    hub = std::make_unique<presence_hub>(std::move(options));
    hub->join("notes.a", &member_key, member);
  }

  std::vector<json> updates_shown() const {
    std::vector<json> out;
    for (const auto& f : member->frames) {
      if (f["a"] == "p") out.push_back(f);
    }
    return out;
  }

  recording_bus bus;
  std::shared_ptr<inline_io> member = std::make_shared<inline_io>();
  int member_key = 0;
  std::uint64_t head = 10;
  bool pending_moves = false;
  std::vector<std::function<void()>> held;
  std::vector<std::string> moved_srcs;
  std::unique_ptr<presence_hub> hub;
};

TEST_F(hub_fixture, JoinsTheBusOnTheFirstMemberAndLeavesOnTheLast) {
  int other = 0;
  EXPECT_EQ(hub->join("notes.a", &other, member), presence_hub::join_result::joined);
  EXPECT_EQ(hub->join("notes.a", &other, member), presence_hub::join_result::already);
  EXPECT_EQ(bus.joined, std::vector<std::string>{"notes.a"});
  hub->leave("notes.a", &member_key);
  EXPECT_TRUE(bus.left.empty());
  hub->leave("notes.a", &other);
  EXPECT_EQ(bus.left, std::vector<std::string>{"notes.a"});
}

TEST_F(hub_fixture, PublishesToTheBusWithTheSendersRealIdAndKind) {
  auto frame = std::make_shared<const std::string>(R"({"a":"p","ch":"notes.a","src":"alias","id":"c","p":null})");
  hub->publish("notes.a", frame, nullptr, presence_hub::frame_kind::update, "real-id");
  hub->publish("notes.a", frame, nullptr, presence_hub::frame_kind::resend);
  ASSERT_EQ(bus.published.size(), 2U);
  EXPECT_EQ(bus.published[0].second, "p\nreal-id\n" + *frame);
  EXPECT_EQ(bus.published[1].second, "r\n\n" + *frame);
}

TEST_F(hub_fixture, MovesARemotePresenceToThisInstancesHeadWithTheOwnersRealId) {
  hub->on_remote_message("notes.a", "B", remote_update("bob", "cur", {{"index", 2}, {"length", 1}}, 0, 7));
  auto shown = updates_shown();
  ASSERT_EQ(shown.size(), 1U);
  EXPECT_EQ(shown[0]["v"], 10);
  EXPECT_EQ(shown[0]["p"], json({{"index", 5}, {"length", 1}}));
  EXPECT_EQ(shown[0]["src"], "bob");
  EXPECT_EQ(moved_srcs, std::vector<std::string>{"real-bob"});
  EXPECT_EQ(hub->remote_presences(), 1U);
  // A presence ahead of this copy stays as it is: the client waits for the ops.
  hub->on_remote_message("notes.a", "B", remote_update("bob", "cur", {{"index", 2}, {"length", 0}}, 1, 12));
  shown = updates_shown();
  ASSERT_EQ(shown.size(), 2U);
  EXPECT_EQ(shown[1]["v"], 12);
  EXPECT_EQ(shown[1]["p"], json({{"index", 2}, {"length", 0}}));
  EXPECT_EQ(hub->remote_presences(), 1U);
  hub->on_remote_message("notes.a", "B", remote_update("bob", "cur", nullptr, 2, 12));
  EXPECT_EQ(hub->remote_presences(), 0U);
}

TEST_F(hub_fixture, ClearsALostInstancesPresencesAtTheHeadAndOnlyThose) {
  hub->on_remote_message("notes.a", "B", remote_update("bob", "cur", {{"index", 1}, {"length", 0}}, 4, 10));
  hub->on_remote_message("notes.a", "C", remote_update("cy", "cur", {{"index", 2}, {"length", 0}}, 1, 10));
  member->frames.clear();
  head = 15;
  hub->on_instance_lost("B");
  auto shown = updates_shown();
  ASSERT_EQ(shown.size(), 1U);
  EXPECT_EQ(shown[0]["src"], "bob");
  EXPECT_TRUE(shown[0]["p"].is_null());
  EXPECT_EQ(shown[0]["pv"], 4);  // the same pv: receivers take it
  EXPECT_EQ(shown[0]["v"], 15);  // at the head, or a receiver asks for a resend nobody answers
  EXPECT_EQ(hub->remote_presences(), 1U);
  hub->on_instance_lost("B");  // twice: nothing more
  EXPECT_EQ(updates_shown().size(), 1U);
}

TEST_F(hub_fixture, AnUpdateStillBeingMovedWhenItsInstanceIsLostIsNeverShown) {
  pending_moves = true;
  hub->on_remote_message("notes.a", "B", remote_update("bob", "cur", {{"index", 1}, {"length", 0}}, 0, 9));
  hub->on_instance_lost("B");
  for (auto& run : held) run();
  EXPECT_TRUE(updates_shown().empty());
  EXPECT_EQ(hub->remote_presences(), 0U);
}

TEST_F(hub_fixture, AResubscriptionClearsWhatOthersShowedAndAsksEveryoneAgain) {
  hub->on_remote_message("notes.a", "B", remote_update("bob", "cur", {{"index", 1}, {"length", 0}}, 0, 10));
  member->frames.clear();
  bus.published.clear();
  hub->on_subscribed("notes.a", true);
  ASSERT_EQ(member->frames.size(), 2U);
  EXPECT_TRUE(member->frames[0]["p"].is_null());
  EXPECT_EQ(member->frames[1], json({{"a", "pr"}, {"ch", "notes.a"}}));  // members here show theirs again
  ASSERT_EQ(bus.published.size(), 1U);
  EXPECT_TRUE(bus.published[0].second.starts_with("r\n"));  // and the other instances
  EXPECT_EQ(hub->remote_presences(), 0U);
}

// Two instances whose subscriptions are slow: B's member published before A listened, and B asked
// before A listened too. A's first subscription asks the others, and its own members as well: B
// may have asked (and been answered by nobody) while A was not yet subscribed.
TEST_F(hub_fixture, AFirstSubscriptionAsksTheMembersHereAsWellAsTheOthers) {
  member->frames.clear();
  bus.published.clear();
  hub->on_subscribed("notes.a", false);
  ASSERT_EQ(member->frames.size(), 1U);
  EXPECT_EQ(member->frames[0], json({{"a", "pr"}, {"ch", "notes.a"}}));
  ASSERT_EQ(bus.published.size(), 1U);
  EXPECT_TRUE(bus.published[0].second.starts_with("r\n"));
}

TEST_F(hub_fixture, TracksAtMostTheLimitButShowsEverything) {
  for (int i = 0; i < 5; ++i) {
    hub->on_remote_message("notes.a", "B",
                           remote_update("bob", "c" + std::to_string(i), {{"index", 0}, {"length", 0}}, 0, 10));
  }
  EXPECT_EQ(updates_shown().size(), 5U);
  EXPECT_EQ(hub->remote_presences(), 3U);
}

TEST_F(hub_fixture, IgnoresMalformedPayloadsAndChannelsWithoutMembers) {
  for (const char* bad : {"", "p", "p\n", "p\nsrc", "x\nsrc\n{}", "p\nsrc\nnot json", "p\nsrc\n[1,2]",
                          R"(p
src
{"a":"p","ch":"other.channel","src":"s","id":"i","p":null})",
                          R"(p
src
{"a":"p","ch":"notes.a","id":"i","p":1})"}) {
    hub->on_remote_message("notes.a", "B", bad);
  }
  EXPECT_TRUE(member->frames.empty());
  hub->on_remote_message("notes.b", "B", remote_update("bob", "cur", {{"index", 1}}, 0, 10));
  EXPECT_TRUE(member->frames.empty());
  EXPECT_EQ(hub->remote_presences(), 0U);
}

TEST_F(hub_fixture, AResendFromAnotherInstanceReachesEveryMemberHere) {
  hub->on_remote_message("notes.a", "B", "r\n\n" + protocol::encode_presence_resend("notes.a"));
  ASSERT_EQ(member->frames.size(), 1U);
  EXPECT_EQ(member->frames[0]["a"], "pr");
}

TEST(PresenceHub, RefusesAChannelPastTheServersLimit) {
  presence_hub::options options;
  options.max_channels = 2;
  presence_hub hub(std::move(options));
  auto io = std::make_shared<inline_io>();
  int a = 0;
  int b = 0;
  EXPECT_EQ(hub.join("c.1", &a, io), presence_hub::join_result::joined);
  EXPECT_EQ(hub.join("c.2", &a, io), presence_hub::join_result::joined);
  EXPECT_EQ(hub.join("c.3", &a, io), presence_hub::join_result::full);
  EXPECT_EQ(hub.join("c.2", &b, io), presence_hub::join_result::joined);  // an existing channel still takes members
  hub.leave("c.1", &a);
  EXPECT_EQ(hub.join("c.3", &a, io), presence_hub::join_result::joined);
  EXPECT_EQ(hub.channels(), 2U);
}

TEST_F(hub_fixture, GivesKeptRemovalsAgainAtTheHeadToTheMemberThatAsks) {
  int asker_key = 0;
  auto asker = std::make_shared<inline_io>();
  hub->join("notes.a", &asker_key, asker);
  protocol::presence_update_request gone;
  gone.channel = "notes.a";
  gone.id = "caret";
  gone.pv = 7;
  gone.collection = "notes";
  gone.doc_id = "a";
  gone.version = 4;
  hub->note_removal("notes.a", gone, "alias-of-bob");
  head = 12;
  hub->resend_removals("notes.a", &asker_key);
  ASSERT_EQ(asker->frames.size(), 1U);
  EXPECT_TRUE(asker->frames[0]["p"].is_null());
  EXPECT_EQ(asker->frames[0]["v"], 12);  // at the head: the client takes it now
  EXPECT_EQ(asker->frames[0]["pv"], 7);
  EXPECT_EQ(asker->frames[0]["src"], "alias-of-bob");
  EXPECT_TRUE(member->frames.empty());  // only to the one that asked
  // The same presence shows again: its old removal is not given again.
  hub->forget_removal("notes.a", "alias-of-bob", "caret");
  hub->resend_removals("notes.a", &asker_key);
  EXPECT_EQ(asker->frames.size(), 1U);
}

TEST_F(hub_fixture, KeepsAFewRemovalsPerChannelAndNoneForAChannelWithoutMembers) {
  protocol::presence_update_request gone;
  gone.channel = "notes.a";
  gone.pv = 1;
  for (int i = 0; i < 300; ++i) {
    gone.id = "p" + std::to_string(i);
    hub->note_removal("notes.a", gone, "s");
  }
  hub->note_removal("notes.b", gone, "s");  // nobody here on notes.b
  hub->resend_removals("notes.a", &member_key);
  EXPECT_EQ(member->frames.size(), 128U);
  EXPECT_EQ(member->frames.back()["id"], "p299");  // the newest kept
  // A remote removal is kept too, and a remote presence that shows again forgets it.
  member->frames.clear();
  hub->on_remote_message("notes.a", "B", remote_update("bob", "cur", nullptr, 3, 10));
  hub->on_remote_message("notes.a", "B", remote_update("bob", "cur", {{"index", 1}, {"length", 0}}, 4, 10));
  member->frames.clear();
  hub->resend_removals("notes.a", &member_key);
  for (const auto& f : member->frames) EXPECT_NE(f["id"], "cur");
}

}  // namespace
}  // namespace otsync::server
