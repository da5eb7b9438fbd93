// Several in-process instances (a registry each, over its own store on one
// shared memory, with its own feed from one memory hub) behave as otsyncd
// instances sharing Redis: a subscriber on one instance gets the ops
// committed through another, and racing submits on two instances converge.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "otsync/doc/registry.hpp"
#include "otsync/doc/service.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/pubsub/memory_feed.hpp"
#include "otsync/store/memory_store.hpp"

namespace otsync::doc {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using C = ot::component;

class recording_subscriber : public subscriber {
 public:
  void on_op(const shared_broadcast& op) override {
    std::lock_guard lock(mutex_);
    frames_.push_back(*op->frame);
    srcs_.push_back(op->src);
    changed_.notify_all();
  }
  bool wait_for(std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 15s, [&] { return frames_.size() >= count; });
  }
  std::vector<std::string> srcs() {
    std::lock_guard lock(mutex_);
    return srcs_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> frames_;
  std::vector<std::string> srcs_;
};

/// Counts what the documents report of ops the store lost.
class lost_ops_observer : public document_observer {
 public:
  void on_committed(std::size_t, std::chrono::nanoseconds) override {}
  void on_submit_done(std::chrono::nanoseconds, const protocol::error_info*) override {}
  void on_store_lost_ops(const std::string&, const std::string&, std::uint64_t, std::size_t ops,
                         bool put_back) override {
    (put_back ? put_back_ : gone_) += ops;
  }
  std::atomic<std::size_t> put_back_{0};
  std::atomic<std::size_t> gone_{0};
};

/// A store over another that fails the next few reads of ops or batch commits as unreachable
/// (nothing done), as Redis does during a failover.
namespace st = otsync::store;

class flaky_store final : public st::store {
 public:
  explicit flaky_store(std::unique_ptr<st::store> inner) : inner_(std::move(inner)) {}
  void load(const st::doc_key& key, std::optional<std::uint64_t> version,
            st::handler<st::loaded_document> done) override {
    inner_->load(key, version, std::move(done));
  }
  void load_ops(const st::doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to,
                st::handler<std::vector<op_record>> done) override {
    if (take(fail_reads)) return done(st::errc::unavailable);
    inner_->load_ops(key, from, to, std::move(done));
  }
  void version_at(const st::doc_key& key, std::int64_t timestamp_ms, st::handler<std::uint64_t> done) override {
    inner_->version_at(key, timestamp_ms, std::move(done));
  }
  void commit(st::commit_request request, st::commit_handler done) override {
    inner_->commit(std::move(request), std::move(done));
  }
  void commit_all(std::vector<st::commit_request> requests, st::commit_handler done) override {
    if (take(fail_batches)) return done(make_error_code(st::errc::unavailable));
    inner_->commit_all(std::move(requests), std::move(done));
  }
  bool atomic_batches() const noexcept override { return inner_->atomic_batches(); }
  void list_documents(const std::string& collection, const std::string& after_id, std::size_t limit,
                      st::handler<std::vector<st::document_summary>> done) override {
    inner_->list_documents(collection, after_id, limit, std::move(done));
  }
  void close() override { inner_->close(); }

  std::atomic<int> fail_reads{0};
  std::atomic<int> fail_batches{0};

 private:
  static bool take(std::atomic<int>& count) {
    int left = count.load();
    while (left > 0 && !count.compare_exchange_weak(left, left - 1)) {
    }
    return left > 0;
  }
  std::unique_ptr<st::store> inner_;
};

struct instance {
  instance(asio::io_context& io, pubsub::memory_hub& hub, std::shared_ptr<store::shared_memory> memory,
           const std::string& id, document_options options = {})
      : storage(std::make_unique<flaky_store>(store::make_memory_store(std::move(memory), id))),
        feed(hub.open_feed(id)),
        documents(io.get_executor(), *storage, options, &lost, feed.get()) {}
  lost_ops_observer lost;
  std::unique_ptr<flaky_store> storage;
  std::unique_ptr<pubsub::op_feed> feed;
  registry documents;
};

class SharedMemoryInstances : public ::testing::Test {
 protected:
  SharedMemoryInstances() {
    runner = std::thread([this] { io.run(); });
  }
  // As otsyncd shuts down: the threads first, then the documents, then the io_context.
  ~SharedMemoryInstances() override {
    work.reset();
    io.stop();
    runner.join();
    a.reset();
    b.reset();
    more.clear();
  }

  /// Another instance, kept until the threads have stopped: its documents may still be finishing a
  /// read on the io thread when the test's last reply arrives.
  instance* add_instance(const std::string& id, document_options options = {}) {
    return more.emplace_back(std::make_unique<instance>(io, hub, memory, id, options)).get();
  }

  template <class T>
  static T wait(std::future<T>& f) {
    if (f.wait_for(15s) != std::future_status::ready) throw std::runtime_error("timed out");
    return f.get();
  }
  submit_result submit(instance& at, std::string src, std::uint64_t seq, std::optional<std::uint64_t> version,
                       oplog::op_body body) {
    // Shared with the callback: a reply later than the wait still has somewhere to go.
    auto p = std::make_shared<std::promise<submit_result>>();
    auto f = p->get_future();
    at.documents.submit(key, oplog::submission{std::move(src), seq, version, std::move(body)},
                        [p](submit_result r) { p->set_value(std::move(r)); });
    return wait(f);
  }
  std::optional<oplog::snapshot> fetch(instance& at) {
    auto p = std::make_shared<std::promise<read_result>>();
    auto f = p->get_future();
    at.documents.fetch(
        key, std::nullopt, [p](read_result r) { p->set_value(std::move(r)); }, std::chrono::steady_clock::now());
    return wait(f).snap;
  }
  void subscribe(instance& at, const std::shared_ptr<recording_subscriber>& who) {
    auto p = std::make_shared<std::promise<read_result>>();
    auto f = p->get_future();
    (void)at.documents.subscribe(
        key, who, std::nullopt, [p](read_result r) { p->set_value(std::move(r)); }, std::chrono::steady_clock::now());
    ASSERT_FALSE(wait(f).error);
  }

  // "writer" creates the document and types "a" to "e" at its start: versions 0 to 5, text "edcba".
  void create_and_type_five(instance& at) {
    ASSERT_FALSE(submit(at, "writer", 1, 0, oplog::create_body{std::string(ot::type_uri), ""}).error);
    for (std::uint64_t i = 0; i < 5; ++i) {
      ASSERT_FALSE(submit(at, "writer", 2 + i, 1 + i, ot::op{C::insert(std::string(1, char('a' + i)))}).error);
    }
  }

  asio::io_context io{2};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  pubsub::memory_hub hub;
  std::shared_ptr<store::shared_memory> memory = store::make_shared_memory(hub.publisher());
  std::unique_ptr<instance> a = std::make_unique<instance>(io, hub, memory, "instance-a");
  std::unique_ptr<instance> b = std::make_unique<instance>(io, hub, memory, "instance-b");
  std::thread runner;
  std::vector<std::unique_ptr<instance>> more;
  store::doc_key key{"docs", "shared"};
};

TEST_F(SharedMemoryInstances, ASubscriberOnOneInstanceGetsTheOpsCommittedThroughAnother) {
  auto watcher = std::make_shared<recording_subscriber>();
  subscribe(*b, watcher);
  ASSERT_FALSE(submit(*a, "writer", 1, 0, oplog::create_body{std::string(ot::type_uri), "abc"}).error);
  for (std::uint64_t i = 0; i < 3; ++i) {
    ASSERT_FALSE(submit(*a, "writer", 2 + i, 1 + i, ot::op{C::insert("x")}).error);
  }
  ASSERT_TRUE(watcher->wait_for(4)) << "instance b's subscriber missed ops committed through instance a";
  EXPECT_EQ(watcher->srcs(), (std::vector<std::string>(4, "writer")));
  auto at_b = fetch(*b);
  ASSERT_TRUE(at_b);
  EXPECT_EQ(at_b->version, 4U);
  EXPECT_EQ(at_b->data, "xxxabc");
}

TEST_F(SharedMemoryInstances, RacingSubmitsOnTwoInstancesConverge) {
  auto watcher_a = std::make_shared<recording_subscriber>();
  auto watcher_b = std::make_shared<recording_subscriber>();
  subscribe(*a, watcher_a);
  subscribe(*b, watcher_b);
  ASSERT_FALSE(submit(*a, "one", 1, 0, oplog::create_body{std::string(ot::type_uri), ""}).error);
  // Both at version 1: one instance loses the compare-and-set and rebases.
  auto first = std::async(std::launch::async, [&] { return submit(*a, "one", 2, 1, ot::op{C::insert("A")}); });
  auto second = std::async(std::launch::async, [&] { return submit(*b, "two", 1, 1, ot::op{C::insert("B")}); });
  auto first_result = first.get();
  auto second_result = second.get();
  ASSERT_FALSE(first_result.error) << first_result.error->message;
  ASSERT_FALSE(second_result.error) << second_result.error->message;
  // Each instance's subscriber sees all three ops (the other's through the hub).
  ASSERT_TRUE(watcher_a->wait_for(3));
  ASSERT_TRUE(watcher_b->wait_for(3));
  auto at_a = fetch(*a);
  auto at_b = fetch(*b);
  ASSERT_TRUE(at_a && at_b);
  EXPECT_EQ(at_a->version, 3U);
  EXPECT_EQ(at_a->data, at_b->data);
  EXPECT_EQ(at_a->data.size(), 2U);
}

// A Redis failover without --redis-min-replicas promotes a replica that lacks the last acknowledged
// commits: the store's log is suddenly shorter than what every client saw. The instance that next
// commits finds out, still has the ops, and puts them back before its own: nothing acknowledged is
// lost, and clients that saw them (never going back a version) stay in step.
TEST_F(SharedMemoryInstances, OpsTheStoreLostArePutBackByAnInstanceThatStillHasThem) {
  auto watcher = std::make_shared<recording_subscriber>();
  subscribe(*b, watcher);
  ASSERT_NO_FATAL_FAILURE(create_and_type_five(*a));
  ASSERT_TRUE(watcher->wait_for(6));
  store::lose_ops(*memory, key, 3);  // versions 3, 4 and 5 ("cde") are gone

  auto next = submit(*a, "writer", 7, 6, ot::op{C::insert("f")});
  ASSERT_FALSE(next.error) << next.error->message;
  EXPECT_EQ(next.version, 6U) << "committed after the ops put back, not over the gap";
  EXPECT_EQ(a->lost.put_back_.load(), 3U);
  EXPECT_EQ(a->lost.gone_.load(), 0U);
  ASSERT_TRUE(watcher->wait_for(7));
  EXPECT_EQ(watcher->srcs().size(), 7U) << "b's subscriber got an op twice";
  // Every instance and the store's log agree, from the start.
  auto* fresh = add_instance("instance-c");
  for (instance* at : {a.get(), b.get(), fresh}) {
    auto snap = fetch(*at);
    ASSERT_TRUE(snap);
    EXPECT_EQ(snap->version, 7U);
    EXPECT_EQ(snap->data, "fedcba");
  }
}

// The store's copy may end on a stored snapshot with no op after it: its last op is read to know the
// history is the same before anything is put back.
TEST_F(SharedMemoryInstances, OpsLostRightAfterAStoredSnapshotArePutBackToo) {
  document_options every_three;
  every_three.snapshot_interval = 3;
  auto* p = add_instance("instance-p", every_three);
  auto watcher = std::make_shared<recording_subscriber>();
  subscribe(*p, watcher);  // followed, so p keeps its copy (and its cache of ops) between requests
  ASSERT_NO_FATAL_FAILURE(create_and_type_five(*p));
  store::lose_ops(*memory, key, 3);  // keeps the snapshot stored at version 3, and nothing after it
  auto next = submit(*p, "writer", 7, 6, ot::op{C::insert("f")});
  ASSERT_FALSE(next.error) << next.error->message << " (put back " << p->lost.put_back_ << ", gone " << p->lost.gone_
                           << ")";
  EXPECT_EQ(next.version, 6U);
  EXPECT_EQ(p->lost.put_back_.load(), 3U);
  auto snap = fetch(*a);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->version, 7U);
  EXPECT_EQ(snap->data, "fedcba");
}

// The store may not answer while the ops are being put back (a failover under way): the ops wait,
// the document is read again with backoff, and they go back once the store answers.
TEST_F(SharedMemoryInstances, OpsTheStoreLostWaitOutStoreErrorsAndGoBackAfterThem) {
  document_options every_three;
  every_three.snapshot_interval = 3;
  auto* p = add_instance("instance-p", every_three);
  auto watcher = std::make_shared<recording_subscriber>();
  subscribe(*p, watcher);
  ASSERT_NO_FATAL_FAILURE(create_and_type_five(*p));
  store::lose_ops(*memory, key, 3);  // ends on the snapshot at 3: the store's last op is read first
  p->storage->fail_reads = 2;        // the head check's read, then the read of the store's last op
  p->storage->fail_batches = 1;      // then the first commit of the lost ops
  auto refused = submit(*p, "writer", 7, 6, ot::op{C::insert("f")});
  ASSERT_TRUE(refused.error);
  EXPECT_EQ(refused.error->code, "ERR_DATABASE_UNAVAILABLE");
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (p->lost.put_back_ < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(p->lost.put_back_.load(), 3U);
  EXPECT_EQ(p->lost.gone_.load(), 0U);
  auto next = submit(*p, "writer", 7, 6, ot::op{C::insert("f")});
  ASSERT_FALSE(next.error) << next.error->message;
  EXPECT_EQ(next.version, 6U);
  auto snap = fetch(*a);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->data, "fedcba");
}

// Nobody needs to type for it: after a failover the feeds resubscribe, and each instance checks its
// open documents' heads against the store's.
TEST_F(SharedMemoryInstances, AfterAResubscriptionTheInstancesPutBackWhatTheStoreLost) {
  auto watcher_a = std::make_shared<recording_subscriber>();
  auto watcher_b = std::make_shared<recording_subscriber>();
  subscribe(*a, watcher_a);
  subscribe(*b, watcher_b);
  ASSERT_NO_FATAL_FAILURE(create_and_type_five(*a));
  ASSERT_TRUE(watcher_a->wait_for(6));
  ASSERT_TRUE(watcher_b->wait_for(6));
  store::lose_ops(*memory, key, 3);
  hub.resync_everyone();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (a->lost.put_back_ + b->lost.put_back_ < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(a->lost.put_back_ + b->lost.put_back_, 3U) << "one of them puts the three ops back";
  EXPECT_EQ(a->lost.gone_ + b->lost.gone_, 0U);
  auto* fresh = add_instance("instance-c");
  auto snap = fetch(*fresh);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->version, 6U);
  EXPECT_EQ(snap->data, "edcba");
  // And editing goes on from there on either instance.
  auto next = submit(*b, "other", 1, 6, ot::op{C::insert("!")});
  ASSERT_FALSE(next.error) << next.error->message;
  EXPECT_EQ(next.version, 6U);
  ASSERT_TRUE(watcher_a->wait_for(7));
  EXPECT_EQ(watcher_a->srcs().size(), 7U);
}

// When another writer has already committed over the gap, the lost ops are not the store's history
// any more: they are not put back (that would apply them to another text), the loss is reported,
// and a submit based on them is refused with a clear error.
TEST_F(SharedMemoryInstances, OpsTheStoreLostAreNotPutBackOverAnotherWritersOps) {
  ASSERT_NO_FATAL_FAILURE(create_and_type_five(*a));
  store::lose_ops(*memory, key, 3);
  auto* other = add_instance("instance-c");
  auto over = submit(*other, "other", 1, 3, ot::op{C::insert("X")});
  ASSERT_FALSE(over.error) << over.error->message;
  ASSERT_EQ(over.version, 3U);

  auto next = submit(*a, "writer", 7, 6, ot::op{C::insert("f")});
  ASSERT_TRUE(next.error);
  EXPECT_EQ(next.error->code, "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT");
  EXPECT_EQ(a->lost.put_back_.load(), 0U);
  EXPECT_EQ(a->lost.gone_.load(), 2U) << "versions 4 and 5 as a saw them are gone";
  auto snap = fetch(*a);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->version, 4U);
  EXPECT_EQ(snap->data, "Xba");
}

}  // namespace
}  // namespace otsync::doc
