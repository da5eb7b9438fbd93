#include "cluster_slots.hpp"

#include <algorithm>
#include <charconv>

#include <hiredis/hiredis.h>

namespace otsync::redis {
namespace {

// CRC16/XMODEM (polynomial 0x1021, initial 0), as Redis Cluster hashes keys.
constexpr std::array<std::uint16_t, 256> make_crc16_table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    std::uint16_t crc = static_cast<std::uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[byte] = crc;
  }
  return table;
}
constexpr auto crc16_table = make_crc16_table();

std::uint16_t crc16(std::string_view bytes) {
  std::uint16_t crc = 0;
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_table[((crc >> 8) ^ byte) & 0xff]);
  }
  return crc;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

template <class Int>
std::optional<Int> parse_number(std::string_view text) {
  Int n{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return n;
}

}  // namespace

std::uint16_t key_slot(std::string_view key) {
  if (auto open = key.find('{'); open != std::string_view::npos) {
    if (auto close = key.find('}', open + 1); close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<std::uint16_t>(crc16(key) & (cluster_slot_count - 1));
}

std::optional<std::string_view> routing_key(const std::vector<std::string>& argv) {
  if (argv.size() < 2) return std::nullopt;
  const std::string_view name = argv[0];
  if (equals_ignoring_case(name, "EVAL") || equals_ignoring_case(name, "EVALSHA")) {
    if (argv.size() < 4) return std::nullopt;
    auto keys = parse_number<unsigned>(argv[2]);
    if (!keys || *keys == 0) return std::nullopt;
    return std::string_view(argv[3]);
  }
  for (std::string_view keyless : {"WAIT", "SCRIPT", "PING", "ROLE", "CLUSTER", "INFO", "SELECT", "ASKING", "SUBSCRIBE",
                                   "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "SENTINEL"}) {
    if (equals_ignoring_case(name, keyless)) return std::nullopt;
  }
  return std::string_view(argv[1]);
}

std::optional<redirect> parse_redirect(std::string_view error) {
  redirect out;
  if (error.starts_with("MOVED ")) {
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    out.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto slot = parse_number<unsigned>(error.substr(0, space));
  auto address = error.substr(space + 1);
  const auto colon = address.rfind(':');
  if (!slot || *slot >= cluster_slot_count || colon == std::string_view::npos || colon == 0) return std::nullopt;
  auto port = parse_number<unsigned>(address.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) return std::nullopt;
  out.slot = static_cast<std::uint16_t>(*slot);
  out.to = {std::string(address.substr(0, colon)), static_cast<std::uint16_t>(*port)};
  return out;
}

std::optional<slot_map> slot_map::from_cluster_slots(const redisReply* reply, const std::string& fallback_host) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY) return std::nullopt;
  slot_map map;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    // [first, last, [host, port, id...], replicas...]
    const redisReply* range = reply->element[i];
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) return std::nullopt;
    const redisReply* first = range->element[0];
    const redisReply* last = range->element[1];
    const redisReply* master = range->element[2];
    if (first->type != REDIS_REPLY_INTEGER || last->type != REDIS_REPLY_INTEGER || first->integer < 0 ||
        last->integer < first->integer || last->integer >= static_cast<long long>(cluster_slot_count) ||
        master->type != REDIS_REPLY_ARRAY || master->elements < 2 || master->element[0]->type != REDIS_REPLY_STRING ||
        master->element[1]->type != REDIS_REPLY_INTEGER || master->element[1]->integer <= 0 ||
        master->element[1]->integer > 65535) {
      return std::nullopt;
    }
    std::string host(master->element[0]->str, master->element[0]->len);
    if (host.empty() || host == "?") host = fallback_host;
    map.assign(static_cast<std::uint16_t>(first->integer), static_cast<std::uint16_t>(last->integer),
               {std::move(host), static_cast<std::uint16_t>(master->element[1]->integer)});
  }
  return map;
}

void slot_map::assign(std::uint16_t first, std::uint16_t last, const endpoint& master) {
  if (last >= cluster_slot_count || first > last) return;
  auto it = std::find(masters_.begin(), masters_.end(), master);
  if (it == masters_.end()) {
    masters_.push_back(master);
    it = masters_.end() - 1;
  }
  const auto index = static_cast<std::uint16_t>(it - masters_.begin() + 1);
  std::fill(owner_.begin() + first, owner_.begin() + last + 1, index);
}

const endpoint* slot_map::owner(std::uint16_t slot) const {
  if (slot >= cluster_slot_count || owner_[slot] == 0) return nullptr;
  return &masters_[owner_[slot] - 1];
}

bool slot_map::complete() const {
  return std::none_of(owner_.begin(), owner_.end(), [](std::uint16_t o) { return o == 0; });
}

std::vector<endpoint> slot_map::masters() const {
  // Only owners still holding a slot (a MOVED can take a master's last one).
  std::vector<bool> seen(masters_.size() + 1, false);
  std::vector<endpoint> out;
  for (auto o : owner_) {
    if (o != 0 && !seen[o]) {
      seen[o] = true;
      out.push_back(masters_[o - 1]);
    }
  }
  return out;
}

}  // namespace otsync::redis
