// A simulated network: one server-side op log and several clients with ops in
// flight and pending, random edits, random delivery order across clients
// (never within one connection), dropped connections and resends. Every
// replica must converge with the server.
//
// The server side uses oplog::rebase, the client side client::ot_client: the
// same pieces the daemon and the native client are built from.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <span>
#include <variant>
#include <vector>

#include "otsync/client/ot_client.hpp"
#include "otsync/oplog/rebase.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "support/random_ops.hpp"

namespace otsync {
namespace {

struct subscribe_from {
  std::uint64_t version = 0;
};
using to_server = std::variant<client::outgoing_op, subscribe_from>;

struct ack {
  std::uint64_t version = 0;
};
using to_client = std::variant<oplog::op_record, ack>;

struct replica {
  client::ot_client doc;
  std::deque<to_server> outbox;  // client -> server, FIFO
  std::deque<to_client> inbox;   // server -> client, FIFO
  bool connected = true;         // the transport is up
  bool subscribed = true;        // the server streams ops to it
};

class simulation {
 public:
  simulation(std::uint64_t seed, std::size_t clients, std::string initial) : random_(seed), text_(initial) {
    log_.push_back({"creator", 1, 0, oplog::create_body{std::string(ot::type_uri), initial}});
    for (std::size_t i = 0; i < clients; ++i) {
      replicas_.push_back({client::ot_client("client" + std::to_string(i), 1, initial), {}, {}, true, true});
    }
  }

  void run(int steps) {
    for (int step = 0; step < steps; ++step) {
      replica& r = replicas_[random_.uniform(0, replicas_.size() - 1)];
      const auto action = random_.uniform(0, 99);
      if (action < 30) {
        edit(r);
      } else if (action < 60) {
        deliver_to_server(r);
      } else if (action < 95) {
        deliver_to_client(r);
      } else if (action < 98) {
        disconnect(r);
      } else {
        reconnect(r);
      }
    }
    settle();
  }

  void expect_converged() const {
    const std::string server_text = text_.to_string();
    for (const replica& r : replicas_) {
      EXPECT_TRUE(r.doc.synchronised()) << r.doc.src();
      EXPECT_EQ(r.doc.version(), log_.size()) << r.doc.src();
      EXPECT_EQ(r.doc.text().to_string(), server_text) << r.doc.src();
    }
    // The stored text is the replay of the op log.
    ot::rope replay(std::get<oplog::create_body>(log_[0].body).data);
    for (std::size_t v = 1; v < log_.size(); ++v) {
      ASSERT_FALSE(ot::apply(replay, std::get<ot::op>(log_[v].body)));
    }
    EXPECT_EQ(replay.to_string(), server_text);
    // No (src, seq) was committed twice.
    for (std::size_t a = 0; a < log_.size(); ++a) {
      for (std::size_t b = a + 1; b < log_.size(); ++b) {
        EXPECT_FALSE(log_[a].src == log_[b].src && log_[a].seq == log_[b].seq) << "duplicate commit";
      }
    }
  }

  [[nodiscard]] std::size_t commits() const { return log_.size() - 1; }
  [[nodiscard]] std::size_t resends() const { return resends_; }

 private:
  void edit(replica& r) {
    const ot::op o = random_.op_for(r.doc.text().to_string());
    if (o.empty()) return;
    ASSERT_FALSE(r.doc.submit(o));
    flush(r);
  }

  void flush(replica& r) {
    if (!r.connected) return;  // sent after reconnecting
    if (auto out = r.doc.flush(next_seq_[r.doc.src()])) {
      if (out->resend) ++resends_;
      r.outbox.emplace_back(std::move(*out));
    }
  }

  void deliver_to_server(replica& r) {
    if (r.outbox.empty()) return;
    const to_server message = std::move(r.outbox.front());
    r.outbox.pop_front();
    if (const auto* sub = std::get_if<subscribe_from>(&message)) {
      send_ops(r, sub->version, log_.size());
      r.subscribed = true;
      return;
    }
    const auto& out = std::get<client::outgoing_op>(message);
    oplog::submission s{out.src, out.seq, out.version, out.op};
    const std::uint64_t submitted_at = out.version;
    const std::span<const oplog::op_record> history(log_.data() + std::min<std::size_t>(submitted_at, log_.size()),
                                                    log_.size() - std::min<std::size_t>(submitted_at, log_.size()));
    auto status = oplog::rebase(s, history, log_.size());
    ASSERT_TRUE(status.has_value()) << status.error().message();
    const std::uint64_t commit_version = *s.version;
    if (*status == oplog::rebase_status::ready) {
      ASSERT_FALSE(ot::apply(text_, std::get<ot::op>(s.body)));
      log_.push_back({s.src, s.seq, commit_version, std::move(s.body)});
      for (replica& other : replicas_) {
        if (&other != &r && other.subscribed) other.inbox.emplace_back(log_.back());
      }
    }
    // The submitter sees every op before its own, then the ack (also for a resend).
    send_ops(r, submitted_at, commit_version);
    r.inbox.emplace_back(ack{commit_version});
  }

  void send_ops(replica& r, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t v = from; v < to; ++v) r.inbox.emplace_back(log_[v]);
  }

  void deliver_to_client(replica& r) {
    if (r.inbox.empty()) return;
    const to_client message = std::move(r.inbox.front());
    r.inbox.pop_front();
    if (const auto* a = std::get_if<ack>(&message)) {
      ASSERT_FALSE(r.doc.acknowledge(a->version)) << r.doc.src() << " ack " << a->version;
    } else {
      auto result = r.doc.receive(std::get<oplog::op_record>(message));
      ASSERT_TRUE(result.has_value()) << result.error().message();
      ASSERT_NE(*result, client::receive_result::gap) << "the server must never leave a gap";
    }
    flush(r);
  }

  void disconnect(replica& r) {
    if (!r.connected) return;
    // Some of what was sent got through before the drop; the rest is lost.
    for (auto n = random_.uniform(0, r.outbox.size()); n > 0; --n) deliver_to_server(r);
    r.outbox.clear();
    r.inbox.clear();
    r.connected = false;
    r.subscribed = false;
    r.doc.disconnected();
  }

  void reconnect(replica& r) {
    if (r.connected) return;
    r.connected = true;
    flush(r);  // the in-flight op first, with its (src, seq)
    r.outbox.emplace_back(subscribe_from{r.doc.version()});
  }

  void settle() {
    for (replica& r : replicas_) reconnect(r);
    for (int guard = 0; guard < 1000000; ++guard) {
      bool busy = false;
      for (replica& r : replicas_) {
        if (!r.outbox.empty()) {
          deliver_to_server(r);
          busy = true;
        }
        if (!r.inbox.empty()) {
          deliver_to_client(r);
          busy = true;
        }
      }
      if (!busy) return;
    }
    FAIL() << "the network never went quiet";
  }

  test::random_ops random_;
  ot::rope text_;
  std::vector<oplog::op_record> log_;
  std::vector<replica> replicas_;
  std::map<std::string, std::uint64_t> next_seq_;
  std::size_t resends_ = 0;
};

TEST(NetworkSimulation, EveryReplicaConvergesWithTheServer) {
  const std::uint64_t seed = test::fuzz_seed(2024);
  const int runs = test::fuzz_iterations(40);
  std::size_t commits = 0;
  std::size_t resends = 0;
  for (int run = 0; run < runs; ++run) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " run " + std::to_string(run));
    simulation sim(seed + static_cast<std::uint64_t>(run), 2 + static_cast<std::size_t>(run % 5), "héllo wörld 😀");
    sim.run(3000);
    sim.expect_converged();
    commits += sim.commits();
    resends += sim.resends();
    if (::testing::Test::HasFailure()) return;
  }
  // The schedule must really exercise concurrency and resends.
  EXPECT_GT(commits, static_cast<std::size_t>(runs) * 40);
  EXPECT_GT(resends, 0U);
}

}  // namespace
}  // namespace otsync
