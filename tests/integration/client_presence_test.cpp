// Presence in the native client library against a real otsyncd (random
// loopback port, stopped by PID): one client's selection shows on another's
// text and moves with the edits; under concurrent typing (randomised, several
// rounds; each client moves its cursor and often types at it afterwards, which
// sends nothing: everyone moves it by the owner's rule) every client's view of
// every other cursor equals what its owner holds at quiescence; a client that closes leaves; after a server restart
// the cursors come back; the same against the real ShareDB 7 server (the peer
// with presence on), which speaks the reference protocol. Every wait is bounded.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "otsync/client/connection.hpp"
#include "otsync/ot/unicode.hpp"
#include "support/process.hpp"
#include "support/server_process.hpp"

namespace {

using namespace std::chrono_literals;
using otsync::client::connection;
using otsync::client::connection_options;
using otsync::client::document;
using otsync::client::presence_change;
using otsync::client::presence_kind;
using otsync::ot::selection;
using otsync::test::server_process;
namespace fs = std::filesystem;

connection_options options_for(const server_process& server) {
  connection_options o;
  o.url = server.url();
  o.reconnect_min = 20ms;
  o.reconnect_max = 300ms;
  return o;
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

/// `viewer`'s view of the presence `id`, if it shows one.
std::optional<selection> shown(const document& viewer, const std::string& id) {
  for (const auto& p : viewer.remote_presences())
    if (p.id == id) return p.selection;
  return std::nullopt;
}

bool shows(const document& viewer, const std::string& id) {
  for (const auto& p : viewer.remote_presences())
    if (p.id == id) return true;
  return false;
}

/// Records presence callbacks from the connection's thread.
struct recorder {
  std::mutex mutex;
  std::vector<presence_change> changes;
  std::function<void(const presence_change&)> callback() {
    return [this](const presence_change& c) {
      std::lock_guard lock(mutex);
      changes.push_back(c);
    };
  }
  std::size_t count(presence_kind kind, const std::string& id) {
    std::lock_guard lock(mutex);
    std::size_t n = 0;
    for (const auto& c : changes)
      if (c.kind == kind && c.presence.id == id) ++n;
    return n;
  }
};

std::size_t length(const document& doc) {
  return otsync::ot::unicode::count_code_points(doc.text());
}

TEST(ClientPresenceIntegration, ASelectionShowsOnTheOtherTextAndMovesWithTheEdits) {
  server_process server({OTSYNCD_PATH, "--store", "memory:", "--log-level", "warn"});
  // Before the connections: their callbacks may still run while they close (a failed assertion
  // ends the test with presences shown).
  recorder seen;
  std::string a_src;
  std::mutex src_mutex;
  connection ca(options_for(server));
  connection cb(options_for(server));
  auto a = ca.open("docs", "show", std::string("hello world"));
  ASSERT_TRUE(a->wait_synchronised(20s));
  auto b = cb.open("docs", "show");
  ASSERT_TRUE(b->wait_synchronised(20s));
  b->on_presence(seen.callback());
  b->on_change([&](const otsync::client::change& c) {
    std::lock_guard lock(src_mutex);
    if (c.kind == otsync::client::change_kind::edit) a_src = c.src;
  });
  const std::string id = a->presence_id();
  ASSERT_FALSE(a->set_selection(selection{6, 11}, R"({"name":"Ada"})"));  // "world"
  ASSERT_TRUE(wait_until([&] { return shown(*b, id) == selection{6, 11}; }, 10s)) << server.log();
  EXPECT_EQ(b->remote_presences().at(0).data, R"({"name":"Ada"})");
  // Callbacks run on the connection's thread after its lock is released: waited for too.
  EXPECT_TRUE(wait_until([&] { return seen.count(presence_kind::joined, id) == 1; }, 5s));

  // A types before its selection: B's view of it moves.
  ASSERT_FALSE(a->insert(0, "¡"));
  ASSERT_TRUE(wait_until([&] { return b->text() == "¡hello world"; }, 10s));
  EXPECT_EQ(shown(*b, id), (selection{7, 12}));
  EXPECT_EQ(a->selection(), (selection{7, 12}));
  {
    std::lock_guard lock(src_mutex);
    auto all = b->remote_presences();
    ASSERT_EQ(all.size(), 1U);
    EXPECT_EQ(all[0].src, a_src);  // the author as its ops show it
  }
  // B types inside it, locally first (not yet acknowledged): B's view already counts it.
  ASSERT_FALSE(b->insert(9, "😀😀"));
  EXPECT_EQ(shown(*b, id), (selection{7, 14}));
  ASSERT_TRUE(wait_until([&] { return a->text() == "¡hello wo😀😀rld"; }, 10s));
  EXPECT_EQ(a->selection(), (selection{7, 14}));
  // A caret, then A types at it: its own insert carries it, for A and in B's view.
  ASSERT_FALSE(a->set_selection(selection{3, 3}));
  ASSERT_TRUE(wait_until([&] { return shown(*b, id) == selection{3, 3}; }, 10s));
  ASSERT_FALSE(a->insert(3, "xyz"));
  EXPECT_EQ(a->selection(), (selection{6, 6}));
  ASSERT_TRUE(wait_until([&] { return b->text() == a->text() && shown(*b, id) == selection{6, 6}; }, 10s));
  EXPECT_TRUE(wait_until([&] { return seen.count(presence_kind::updated, id) == 1; }, 5s));
  EXPECT_EQ(b->presences_dropped(), 0U);

  // B shows itself: A sees it (A subscribed when it first set its selection).
  ASSERT_FALSE(b->set_selection(selection{1, 1}));
  ASSERT_TRUE(wait_until([&] { return shown(*a, b->presence_id()) == selection{1, 1}; }, 10s));

  // Cleared: B sees it leave.
  ASSERT_FALSE(a->set_selection(std::nullopt));
  ASSERT_TRUE(wait_until([&] { return !shows(*b, id); }, 10s));
  EXPECT_TRUE(wait_until([&] { return seen.count(presence_kind::left, id) == 1; }, 5s));
}

TEST(ClientPresenceIntegration, EveryCursorIsWhereItsOwnerHoldsItAfterConcurrentTyping) {
  server_process server({OTSYNCD_PATH, "--store", "memory:", "--log-level", "warn"});
  constexpr std::size_t clients = 3;
  constexpr int rounds = 8;
  constexpr int steps = 15;
  std::vector<std::unique_ptr<connection>> connections;
  std::vector<std::shared_ptr<document>> docs;
  for (std::size_t i = 0; i < clients; ++i) {
    connections.push_back(std::make_unique<connection>(options_for(server)));
    docs.push_back(connections.back()->open("docs", "together", std::string("the quick brown fox")));
  }
  for (auto& d : docs) ASSERT_TRUE(d->wait_synchronised(20s));
  std::vector<std::string> ids;
  for (auto& d : docs) ids.push_back(d->presence_id());
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < clients; ++i) {
      threads.emplace_back([&, i] {
        std::mt19937 rng(static_cast<unsigned>(round * 100 + static_cast<int>(i)));
        auto& doc = *docs[i];
        for (int step = 0; step < steps; ++step) {
          // Remote ops may change the length between the read and the call: such calls are refused whole.
          auto n = length(doc);
          auto at = std::uniform_int_distribution<std::size_t>(0, n)(rng);
          if (rng() % 3 == 0 && n > 2) {
            (void)doc.erase(std::min(at, n - 1), 1);
          } else {
            (void)doc.insert(at, rng() % 5 == 0 ? "é😀" : "ab");
          }
          n = length(doc);
          auto caret = std::uniform_int_distribution<std::size_t>(0, n)(rng);
          auto focus = std::uniform_int_distribution<std::size_t>(0, n)(rng);
          (void)doc.set_selection(selection{caret, rng() % 3 == 0 ? caret : focus});
          if (rng() % 2 == 0 || step == steps - 1) {
            // Typing at the caret, as an editor does: the caret follows (not sent again; the
            // others move it by the same rule, the op being its owner's).
            if (auto at_caret = doc.selection()) (void)doc.insert(at_caret->focus, "c");
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 4));
        }
      });
    }
    for (auto& t : threads) t.join();
    for (auto& d : docs) ASSERT_TRUE(d->wait_synchronised(30s));
    ASSERT_TRUE(wait_until(
        [&] {
          for (auto& d : docs)
            if (d->version() != docs[0]->version() || d->text() != docs[0]->text()) return false;
          return true;
        },
        20s))
        << "replicas did not converge in round " << round;
    // Quiescence: every client shows every other's cursor where its owner holds it (presence
    // updates past the server's rate arrive a little later).
    for (std::size_t i = 0; i < clients; ++i) {
      for (std::size_t j = 0; j < clients; ++j) {
        if (i == j) continue;
        auto owner = docs[j]->selection();
        ASSERT_TRUE(owner);
        EXPECT_TRUE(wait_until([&] { return shown(*docs[i], ids[j]) == owner; }, 10s))
            << "round " << round << ": client " << i << " shows client " << j << "'s cursor at "
            << (shown(*docs[i], ids[j]) ? std::to_string(shown(*docs[i], ids[j])->anchor) + "," +
                                              std::to_string(shown(*docs[i], ids[j])->focus)
                                        : std::string("nothing"))
            << ", its owner holds " << owner->anchor << "," << owner->focus;
      }
    }
  }
  for (auto& d : docs) EXPECT_EQ(d->presences_dropped(), 0U);
}

TEST(ClientPresenceIntegration, ACloseLeavesAndAServerRestartBringsTheCursorsBack) {
  auto dir = otsync::test::make_temp_dir("otsync-client-presence");
  server_process server({OTSYNCD_PATH, "--store", "sqlite:" + (dir / "otsync.db").string(), "--log-level", "warn"});
  recorder seen;  // before the connections, as above
  connection ca(options_for(server));
  connection cb(options_for(server));
  auto a = ca.open("docs", "restart", std::string("0123456789"));
  ASSERT_TRUE(a->wait_synchronised(20s));
  auto b = cb.open("docs", "restart");
  ASSERT_TRUE(b->wait_synchronised(20s));
  b->on_presence(seen.callback());
  ASSERT_FALSE(a->set_selection(selection{2, 5}));
  ASSERT_FALSE(b->set_selection(selection{8, 8}));
  const std::string id_a = a->presence_id();
  const std::string id_b = b->presence_id();
  ASSERT_TRUE(wait_until([&] { return shown(*b, id_a) == selection{2, 5}; }, 10s));
  ASSERT_TRUE(wait_until([&] { return shown(*a, id_b) == selection{8, 8}; }, 10s));

  server.kill_hard();
  ASSERT_TRUE(wait_until([&] { return !shows(*b, id_a); }, 10s));  // gone with our connection
  server.restart();
  ASSERT_TRUE(ca.wait_connected(20s));
  ASSERT_TRUE(cb.wait_connected(20s));
  // Both come back (the same presence ids), and still move with the edits.
  ASSERT_TRUE(wait_until([&] { return shown(*b, id_a) == selection{2, 5}; }, 20s)) << server.log();
  ASSERT_TRUE(wait_until([&] { return shown(*a, id_b) == selection{8, 8}; }, 20s));
  EXPECT_EQ(a->presence_id(), id_a);
  ASSERT_FALSE(b->insert(0, "--"));
  ASSERT_TRUE(wait_until([&] { return a->text() == "--0123456789" && shown(*b, id_a) == selection{4, 7}; }, 10s));
  ASSERT_TRUE(wait_until([&] { return shown(*a, id_b) == selection{10, 10}; }, 10s));
  EXPECT_TRUE(wait_until([&] { return seen.count(presence_kind::joined, id_a) >= 2; }, 5s));

  ca.close();  // the server tells the others
  ASSERT_TRUE(wait_until([&] { return !shows(*b, id_a); }, 10s));
  EXPECT_TRUE(wait_until([&] { return seen.count(presence_kind::left, id_a) >= 2; }, 5s));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(ClientPresenceIntegration, AgainstTheRealShareDbServer) {
  const fs::path js = fs::path(OTSYNC_TESTS_DIR) / "js";
  const std::string node = OTSYNC_NODE_PATH;
  if (node.empty() || !fs::exists(js / "node_modules" / "sharedb")) {
#ifdef OTSYNC_REQUIRE_ALL_TESTS
    FAIL() << "node or tests/js/node_modules missing";
#else
    GTEST_SKIP() << "node or tests/js/node_modules missing (npm ci in tests/js)";
#endif
  }
  server_process peer({node, (js / ".." / ".." / "bench" / "peer" / "sharedb_server.js").string(), "--presence"});
  connection ca(options_for(peer));
  connection cb(options_for(peer));
  auto a = ca.open("docs", "peer", std::string("hello world"));
  ASSERT_TRUE(a->wait_synchronised(20s)) << peer.log();
  auto b = cb.open("docs", "peer");
  ASSERT_TRUE(b->wait_synchronised(20s));
  const std::string id_a = a->presence_id();
  const std::string id_b = b->presence_id();
  ASSERT_FALSE(a->set_selection(selection{6, 11}));
  ASSERT_TRUE(wait_until([&] { return shown(*b, id_a) == selection{6, 11}; }, 10s)) << peer.log();
  ASSERT_FALSE(b->set_selection(selection{0, 0}));
  ASSERT_TRUE(wait_until([&] { return shown(*a, id_b) == selection{0, 0}; }, 10s)) << peer.log();
  // Each types at its own caret, concurrently: the owner's rule, the same on both sides.
  ASSERT_FALSE(a->insert(6, "big "));
  ASSERT_FALSE(b->insert(0, "¡"));
  ASSERT_TRUE(a->wait_synchronised(10s));
  ASSERT_TRUE(b->wait_synchronised(10s));
  ASSERT_TRUE(wait_until([&] { return a->text() == b->text() && a->version() == b->version(); }, 10s));
  EXPECT_EQ(a->text(), "¡hello big world");
  EXPECT_EQ(a->selection(), (selection{11, 16}));
  EXPECT_EQ(b->selection(), (selection{1, 1}));
  EXPECT_TRUE(wait_until([&] { return shown(*b, id_a) == a->selection(); }, 10s));
  EXPECT_TRUE(wait_until([&] { return shown(*a, id_b) == b->selection(); }, 10s));
  ca.close();
  EXPECT_TRUE(wait_until([&] { return !shows(*b, id_a); }, 10s));
}

}  // namespace
