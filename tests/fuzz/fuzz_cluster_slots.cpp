// libFuzzer target: Redis Cluster routing without I/O (src/redis/cluster_slots.hpp),
// on what a cluster node (or something posing as one) answers: CLUSTER SLOTS
// replies of any shape, MOVED/ASK errors, keys of any bytes.
//
// Input: the first byte chooses what the rest is:
//   0..127   a reply tree built from the bytes (depth <= 4, <= 8 elements per
//            array, integers and strings), given to slot_map::from_cluster_slots;
//   128..255 text given to parse_redirect and key_slot.
// Invariants, each an abort:
//   - a map from a reply: owner(slot) is one of masters() for every slot, every
//     master owns a slot, complete() holds exactly when every slot has an owner;
//   - a redirect: slot < 16384, port > 0, and its own text parses back the same;
//   - key_slot < 16384, and a key's slot is its hash tag's.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <hiredis/hiredis.h>

#include "redis/cluster_slots.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "invariant violated: %s\n", what);
  std::abort();
}

struct byte_source {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t at = 0;
  std::uint8_t next() { return at < size ? data[at++] : 0; }
};

// A reply node allocated as hiredis allocates them, so freeReplyObject frees it.
redisReply* build(byte_source& in, int depth) {
  auto* r = static_cast<redisReply*>(std::calloc(1, sizeof(redisReply)));
  const std::uint8_t kind = in.next() % 4;
  if (kind == 0 && depth < 4) {
    r->type = REDIS_REPLY_ARRAY;
    r->elements = in.next() % 9;
    r->element = static_cast<redisReply**>(std::calloc(r->elements ? r->elements : 1, sizeof(redisReply*)));
    for (std::size_t i = 0; i < r->elements; ++i) r->element[i] = build(in, depth + 1);
  } else if (kind == 1) {
    r->type = REDIS_REPLY_INTEGER;
    // Small numbers mostly (slots, ports), sometimes anything.
    long long value = static_cast<std::int8_t>(in.next());
    if (in.next() % 4 == 0) {
      for (int i = 0; i < 8; ++i) value = (value << 8) | in.next();
    } else {
      value = value * 131 + in.next();
    }
    r->integer = value;
  } else {
    r->type = kind == 3 ? REDIS_REPLY_ERROR : REDIS_REPLY_STRING;
    r->len = in.next() % 16;
    r->str = static_cast<char*>(std::malloc(r->len + 1));
    for (std::size_t i = 0; i < r->len; ++i) r->str[i] = static_cast<char>(in.next());
    r->str[r->len] = '\0';
  }
  return r;
}

void check_map(const otsync::redis::slot_map& map) {
  const auto masters = map.masters();
  bool all = true;
  for (std::size_t slot = 0; slot < otsync::redis::cluster_slot_count; ++slot) {
    const auto* owner = map.owner(static_cast<std::uint16_t>(slot));
    if (!owner) {
      all = false;
      continue;
    }
    bool listed = false;
    for (const auto& m : masters) listed = listed || m == *owner;
    if (!listed) fail("a slot's owner is not among the masters");
    if (owner->first.empty() || owner->second == 0) fail("an owner without a host or a port");
  }
  if (all != map.complete()) fail("complete() disagrees with the owners");
  if (map.owner(static_cast<std::uint16_t>(otsync::redis::cluster_slot_count)) != nullptr) fail("slot 16384 owned");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if (data[0] < 128) {
    byte_source in{data + 1, size - 1};
    redisReply* reply = build(in, 0);
    if (auto map = otsync::redis::slot_map::from_cluster_slots(reply, "fallback")) {
      check_map(*map);
      // A MOVED on top of it keeps the map consistent.
      map->assign(static_cast<std::uint16_t>(size % 16384), static_cast<std::uint16_t>(size % 16384), {"moved", 1});
      check_map(*map);
    }
    freeReplyObject(reply);
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (auto redirect = otsync::redis::parse_redirect(text)) {
    if (redirect->slot >= otsync::redis::cluster_slot_count || redirect->to.second == 0 || redirect->to.first.empty()) {
      fail("a redirect out of range");
    }
    const std::string again = std::string(redirect->ask ? "ASK " : "MOVED ") + std::to_string(redirect->slot) + " " +
                              redirect->to.first + ":" + std::to_string(redirect->to.second);
    auto reparsed = otsync::redis::parse_redirect(again);
    if (!reparsed || reparsed->ask != redirect->ask || reparsed->slot != redirect->slot ||
        reparsed->to != redirect->to) {
      fail("a redirect does not parse back from its own text");
    }
  }
  const auto slot = otsync::redis::key_slot(text);
  if (slot >= otsync::redis::cluster_slot_count) fail("a slot out of range");
  std::string tag(text);
  tag.erase(std::remove_if(tag.begin(), tag.end(), [](char c) { return c == '{' || c == '}'; }), tag.end());
  if (!tag.empty() && otsync::redis::key_slot("x{" + tag + "}" + std::string(text)) != otsync::redis::key_slot(tag)) {
    fail("a key's slot is not its hash tag's");
  }
  return 0;
}
