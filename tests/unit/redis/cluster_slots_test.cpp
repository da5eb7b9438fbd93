// Redis Cluster routing without I/O (src/redis/cluster_slots.hpp): key slots
// against values Redis documents and computes, hash tags, the key each command
// is routed by, MOVED/ASK parsing (hostile text included), and the slot map
// from CLUSTER SLOTS replies parsed from RESP bytes.
#include "redis/cluster_slots.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <random>

#include "redis/keys.hpp"

namespace otsync::redis {
namespace {

struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

// One reply from RESP bytes, as hiredis parses it off a socket.
reply_ptr parse(const std::string& resp) {
  std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(redisReaderCreate(), &redisReaderFree);
  EXPECT_EQ(redisReaderFeed(reader.get(), resp.data(), resp.size()), REDIS_OK);
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader.get(), &reply), REDIS_OK);
  return reply_ptr(static_cast<redisReply*>(reply));
}

TEST(KeySlot, MatchesTheValuesRedisComputes) {
  // CLUSTER KEYSLOT on redis-server 7.0.
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("hello"), 866);
  EXPECT_EQ(key_slot(""), 0);
  EXPECT_EQ(key_slot("123456789"), 0x31C3 & 16383);  // CRC16/XMODEM check value 0x31C3
}

TEST(KeySlot, AHashTagDecidesTheSlot) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  // Only the first {...}; an empty one means the whole key.
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("{unclosed"), key_slot("{unclosed"));
}

TEST(KeySlot, EveryKeyAndChannelOfADocumentShareOneSlot) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 500; ++i) {
    std::string collection;
    std::string id;
    for (int j = 0; j < 1 + i % 9; ++j) collection += static_cast<char>(byte(rng));
    for (int j = 0; j < 1 + i % 13; ++j) id += static_cast<char>(byte(rng));
    const auto tag = doc_tag(collection, id);
    const auto slot = key_slot("p:" + tag + ":head");
    for (const char* what : {":ops", ":ts", ":snaps", ":snapdata", ":seen"}) {
      EXPECT_EQ(key_slot("p:" + tag + what), slot);
    }
    EXPECT_EQ(key_slot(op_channel("p:", collection, id)), slot);
  }
}

TEST(RoutingKey, IsTheCommandsKey) {
  using v = std::vector<std::string>;
  EXPECT_EQ(routing_key(v{"EVALSHA", "abc", "2", "k1", "k2", "arg"}), "k1");
  EXPECT_EQ(routing_key(v{"eval", "return 1", "1", "k"}), "k");
  EXPECT_EQ(routing_key(v{"EVAL", "return 1", "0"}), std::nullopt);
  EXPECT_EQ(routing_key(v{"EVAL", "return 1", "x", "k"}), std::nullopt);
  EXPECT_EQ(routing_key(v{"EVAL", "return 1", "1"}), std::nullopt);
  EXPECT_EQ(routing_key(v{"LRANGE", "ops", "0", "-1"}), "ops");
  EXPECT_EQ(routing_key(v{"SPUBLISH", "ch", "m"}), "ch");
  EXPECT_EQ(routing_key(v{"WAIT", "1", "100"}), std::nullopt);
  EXPECT_EQ(routing_key(v{"SCRIPT", "LOAD", "return 1"}), std::nullopt);
  EXPECT_EQ(routing_key(v{"PING"}), std::nullopt);
  EXPECT_EQ(routing_key(v{}), std::nullopt);
}

TEST(Redirect, ParsesMovedAndAsk) {
  auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_FALSE(moved->ask);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->to, (endpoint{"127.0.0.1", 6381}));
  auto ask = parse_redirect("ASK 16383 redis-2.example:7000");
  ASSERT_TRUE(ask);
  EXPECT_TRUE(ask->ask);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->to, (endpoint{"redis-2.example", 7000}));
  // IPv6: the port is after the last colon.
  auto v6 = parse_redirect("MOVED 1 ::1:7001");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to, (endpoint{"::1", 7001}));
}

TEST(Redirect, RefusesAnythingElse) {
  for (const char* text : {"", "MOVED", "MOVED ", "MOVED 1", "MOVED 1 host", "MOVED 16384 h:1", "MOVED -1 h:1",
                           "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 :7000", "MOVED x h:1", "ASK 1 h:", "ERR wrong",
                           "NOSCRIPT", "TRYAGAIN", "moved 1 h:1", "MOVED 1 h:1x"}) {
    EXPECT_FALSE(parse_redirect(text)) << text;
  }
}

TEST(SlotMap, FromClusterSlots) {
  // Three masters, one with a replica, the second with an empty host (the node asked).
  const std::string resp =
      "*3\r\n"
      "*4\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$"
      "2\r\nid\r\n"
      "*3\r\n:5461\r\n:10922\r\n*3\r\n$0\r\n\r\n:7001\r\n$2\r\nid\r\n"
      "*3\r\n:10923\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nid\r\n";
  auto reply = parse(resp);
  ASSERT_TRUE(reply);
  auto map = slot_map::from_cluster_slots(reply.get(), "10.0.0.9");
  ASSERT_TRUE(map);
  EXPECT_TRUE(map->complete());
  EXPECT_EQ(*map->owner(0), (endpoint{"127.0.0.1", 7000}));
  EXPECT_EQ(*map->owner(5460), (endpoint{"127.0.0.1", 7000}));
  EXPECT_EQ(*map->owner(5461), (endpoint{"10.0.0.9", 7001}));
  EXPECT_EQ(*map->owner(16383), (endpoint{"127.0.0.1", 7002}));
  EXPECT_EQ(map->masters().size(), 3U);
  EXPECT_EQ(map->owner(16384), nullptr);

  // A MOVED corrects one slot; a master that loses its last slot is no longer listed.
  slot_map small;
  small.assign(0, 16383, {"a", 1});
  small.assign(7, 7, {"b", 2});
  EXPECT_EQ(*small.owner(7), (endpoint{"b", 2}));
  EXPECT_EQ(*small.owner(8), (endpoint{"a", 1}));
  small.assign(0, 16383, {"b", 2});
  EXPECT_EQ(small.masters(), (std::vector<endpoint>{{"b", 2}}));
}

TEST(SlotMap, APartialMapIsNotComplete) {
  auto reply = parse("*1\r\n*3\r\n:0\r\n:100\r\n*2\r\n$1\r\nh\r\n:1\r\n");
  auto map = slot_map::from_cluster_slots(reply.get(), "x");
  ASSERT_TRUE(map);
  EXPECT_FALSE(map->complete());
  EXPECT_EQ(map->owner(101), nullptr);
}

TEST(SlotMap, RefusesRepliesOfTheWrongShape) {
  for (const std::string& resp : {
           std::string("+OK\r\n"), std::string("-ERR This instance has cluster support disabled\r\n"),
           std::string("*1\r\n:5\r\n"),                                         // not a range
           std::string("*1\r\n*2\r\n:0\r\n:1\r\n"),                             // no master
           std::string("*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n"),      // last < first
           std::string("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n"),  // beyond the last slot
           std::string("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n"),      // port 0
           std::string("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:70000\r\n"),  // port too big
           std::string("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n"),           // host not a string
           std::string("*1\r\n*3\r\n:-1\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n"),     // negative
       }) {
    auto reply = parse(resp);
    EXPECT_FALSE(slot_map::from_cluster_slots(reply.get(), "x")) << resp;
  }
  EXPECT_FALSE(slot_map::from_cluster_slots(nullptr, "x"));
}

}  // namespace
}  // namespace otsync::redis
