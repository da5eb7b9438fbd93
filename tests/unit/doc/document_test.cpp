// The document actor's failure paths, with a store that can be made to
// misbehave: a commit that loses a compare-and-set race (another writer got
// there first) is retried against the new history; a store that fails
// answers every waiting submit with an error, acknowledges nothing, and the
// document recovers once the store does. With a shared store (a feed), a
// lost race is undone with the op's inverse, and a commit whose reply was
// lost (it committed, but the store reported `unavailable`) is acked once.
#include "doc/document.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "otsync/doc/registry.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/pubsub/op_feed.hpp"
#include "otsync/store/memory_store.hpp"

namespace otsync::doc {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace st = otsync::store;
using C = ot::component;

// Delegates to the memory store; `fail_commits` makes the next commits fail
// with `unavailable`, as a full disk would.
class flaky_store : public st::store {
 public:
  flaky_store() : inner_(st::make_memory_store()) {}
  void load(const st::doc_key& k, std::optional<std::uint64_t> v, st::handler<st::loaded_document> h) override {
    ++loads;
    if (fail_loads > 0) {
      --fail_loads;
      return h(st::errc::unavailable);
    }
    inner_->load(k, v, std::move(h));
  }
  void load_ops(const st::doc_key& k, std::uint64_t from, std::optional<std::uint64_t> to,
                st::handler<std::vector<op_record>> h) override {
    if (fail_load_ops > 0) {
      --fail_load_ops;
      return h(st::errc::unavailable);
    }
    inner_->load_ops(k, from, to, std::move(h));
  }
  void version_at(const st::doc_key& k, std::int64_t ts, st::handler<std::uint64_t> h) override {
    inner_->version_at(k, ts, std::move(h));
  }
  void commit(st::commit_request r, st::commit_handler h) override {
    ++commits;
    if (fail_commits > 0) {
      --fail_commits;
      h(make_error_code(st::errc::unavailable));
      return;
    }
    if (lose_replies > 0) {
      // Committed, but the reply never came back (a timeout).
      --lose_replies;
      inner_->commit(std::move(r), [h = std::move(h)](std::error_code) { h(make_error_code(st::errc::unavailable)); });
      return;
    }
    inner_->commit(std::move(r), std::move(h));
  }
  bool atomic_batches() const noexcept override { return inner_->atomic_batches(); }
  void commit_all(std::vector<st::commit_request> r, st::commit_handler h) override {
    commits += static_cast<int>(r.size());
    ++batches;
    if (fail_commits > 0) {
      --fail_commits;
      h(make_error_code(st::errc::unavailable));
      return;
    }
    inner_->commit_all(std::move(r), std::move(h));
  }
  void list_documents(const std::string& c, const std::string& after, std::size_t limit,
                      st::handler<std::vector<st::document_summary>> h) override {
    inner_->list_documents(c, after, limit, std::move(h));
  }
  void close() override { inner_->close(); }

  std::atomic<int> fail_commits{0};
  std::atomic<int> fail_loads{0};  // the next loads fail with `unavailable` (a failover)
  std::atomic<int> loads{0};
  std::atomic<int> fail_load_ops{0};
  std::atomic<int> lose_replies{0};
  std::atomic<int> commits{0};
  std::atomic<int> batches{0};
  std::unique_ptr<st::store> inner_;
};

// Marks the store as shared with other instances; delivers nothing itself.
class silent_feed : public pubsub::op_feed {
 public:
  std::uint64_t subscribe(const st::doc_key&, op_handler, resync_handler) override { return ++tokens; }
  void unsubscribe(const st::doc_key&, std::uint64_t) override {}
  bool connected() const override { return true; }
  std::uint64_t tokens = 0;
};

// Counts reads that waited for the store.
class held_reads_observer : public document_observer {
 public:
  void on_committed(std::size_t, std::chrono::nanoseconds) override {}
  void on_submit_done(std::chrono::nanoseconds, const protocol::error_info*) override {}
  void on_read_held(bool served) override { ++(served ? served_ : failed_); }
  int served_ = 0;
  int failed_ = 0;
};

// Keeps a document on the feed (a document nobody subscribes to reloads
// before serving, so it never races).
class counting_subscriber : public subscriber {
 public:
  void on_op(const shared_broadcast&) override { ++ops; }
  int ops = 0;
};

class DocumentTest : public ::testing::Test {
 protected:
  DocumentTest() : documents(io.get_executor(), storage, document_options{}) {}

  template <class T>
  T wait(std::future<T>& f) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (f.wait_for(0s) != std::future_status::ready) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "timed out";
        throw std::runtime_error("timeout");
      }
      io.run_for(5ms);
      io.restart();
    }
    return f.get();
  }

  submit_result submit(std::string src, std::uint64_t seq, std::optional<std::uint64_t> version, oplog::op_body body) {
    return submit_to(documents, std::move(src), seq, version, std::move(body));
  }

  submit_result submit_to(registry& docs, std::string src, std::uint64_t seq, std::optional<std::uint64_t> version,
                          oplog::op_body body) {
    std::promise<submit_result> p;
    auto f = p.get_future();
    docs.get(key)->submit(submission{std::move(src), seq, version, std::move(body)},
                          [&p](submit_result r) { p.set_value(std::move(r)); });
    return wait(f);
  }

  read_result fetch() { return fetch_from(documents); }

  read_result fetch_from(registry& docs) {
    std::promise<read_result> p;
    auto f = p.get_future();
    docs.get(key)->fetch(std::nullopt, [&p](read_result r) { p.set_value(std::move(r)); });
    return wait(f);
  }

  // Commits an op straight to the store, as another server instance would.
  void commit_behind_the_actors_back(op_record op, snapshot after) {
    std::promise<std::error_code> p;
    auto f = p.get_future();
    storage.inner_->commit(store::commit_request{key, std::move(op), std::move(after), false},
                           [&p](std::error_code ec) { p.set_value(ec); });
    ASSERT_FALSE(wait(f));
  }

  // "abc" created, then a registry on the store shared through a feed, whose next `failing_loads`
  // loads fail as unavailable (a failover).
  std::unique_ptr<registry> shared_after_create(document_options options = {}, document_observer* observer = nullptr,
                                                int failing_loads = 0) {
    EXPECT_FALSE(submit("a", 1, 0, oplog::create_body{std::string(ot::type_uri), "abc"}).error);
    auto shared = std::make_unique<registry>(io.get_executor(), storage, options, observer, &feed_);
    storage.fail_loads = failing_loads;
    return shared;
  }

  asio::io_context io;
  flaky_store storage;
  silent_feed feed_;
  registry documents;
  store::doc_key key{"docs", "d1"};
};

TEST_F(DocumentTest, CompareAndSetConflictIsRetriedAgainstTheNewHistory) {
  auto created = submit("a", 1, 0, oplog::create_body{std::string(ot::type_uri), "abc"});
  ASSERT_FALSE(created.error);
  ASSERT_EQ(fetch().snap->data, "abc");  // the actor now holds v1 in memory

  // Another writer commits v1 -> v2 ("Xabc") without the actor knowing.
  snapshot after{2, std::string(ot::type_uri), "", create_record{"a", 1, 0}};
  commit_behind_the_actors_back(op_record{"other", 1, 1, ot::op{C::insert("X")}, 0}, after);

  // The actor's commit at v1 loses the race, reloads, transforms against the
  // other op and commits at v2.
  auto r = submit("b", 1, 1, ot::op{C::skip(3), C::insert("!")});
  ASSERT_FALSE(r.error) << r.error->code << " " << r.error->message;
  EXPECT_EQ(r.version, 2u);
  ASSERT_EQ(r.missed.size(), 1u);  // the other writer's op, before the ack
  EXPECT_NE(r.missed[0]->find("\"src\":\"other\""), std::string::npos);
  auto snap = fetch().snap;
  EXPECT_EQ(snap->version, 3u);
  EXPECT_EQ(snap->data, "Xabc!");
}

// At shutdown the registry goes before the io_context, whose handlers still queued then are freed
// with it: a document they alone held gives its bytes back after its registry is gone.
TEST_F(DocumentTest, ADocumentFreedAfterItsRegistryGivesItsBytesBackSafely) {
  auto docs = std::make_unique<registry>(io.get_executor(), storage, document_options{});
  ASSERT_FALSE(submit_to(*docs, "a", 1, 0, oplog::create_body{std::string(ot::type_uri), "abc"}).error);
  EXPECT_GT(docs->resident_bytes(), 0U);
  auto kept = docs->get(key);
  auto counter = docs->resident();
  docs.reset();
  EXPECT_GT(counter->load(), 0);
  kept.reset();
  EXPECT_EQ(counter->load(), 0);
}

TEST_F(DocumentTest, FailedStoreAcknowledgesNothingAndTheDocumentRecovers) {
  ASSERT_FALSE(submit("a", 1, 0, oplog::create_body{std::string(ot::type_uri), "abc"}).error);
  storage.fail_commits = 1;
  auto failed = submit("a", 2, 1, ot::op{C::insert("X")});
  ASSERT_TRUE(failed.error);
  EXPECT_EQ(failed.error->code, "ERR_DATABASE_UNAVAILABLE");
  // Nothing of the failed op is visible, and the next submit commits normally.
  auto snap = fetch().snap;
  EXPECT_EQ(snap->version, 1u);
  EXPECT_EQ(snap->data, "abc");
  auto ok = submit("a", 3, 1, ot::op{C::insert("Y")});
  ASSERT_FALSE(ok.error);
  EXPECT_EQ(ok.version, 1u);
  EXPECT_EQ(fetch().snap->data, "Yabc");
}

TEST_F(DocumentTest, ConflictsBeyondTheRetryLimitAreReported) {
  document_options options;
  options.max_submit_retries = 1;
  registry limited(io.get_executor(), storage, options);
  std::promise<submit_result> p1;
  auto f1 = p1.get_future();
  limited.get(key)->submit(submission{"a", 1, 0, oplog::create_body{std::string(ot::type_uri), ""}},
                           [&p1](submit_result r) { p1.set_value(std::move(r)); });
  ASSERT_FALSE(wait(f1).error);
  // Every later commit from this actor races a writer that is always first.
  snapshot after{2, std::string(ot::type_uri), "", create_record{"a", 1, 0}};
  commit_behind_the_actors_back(op_record{"other", 1, 1, ot::op{C::insert("X")}, 0}, after);
  std::promise<submit_result> p2;
  auto f2 = p2.get_future();
  limited.get(key)->submit(submission{"b", 1, 1, ot::op{C::insert("Y")}},
                           [&p2](submit_result r) { p2.set_value(std::move(r)); });
  auto r = wait(f2);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, "ERR_MAX_SUBMIT_RETRIES_EXCEEDED");
}

TEST_F(DocumentTest, SharedStoreLostRaceIsUndoneByTheInverseAndRetried) {
  silent_feed feed;
  registry shared(io.get_executor(), storage, document_options{}, nullptr, &feed);
  ASSERT_FALSE(submit_to(shared, "a", 1, 0, oplog::create_body{std::string(ot::type_uri), "hello world"}).error);
  auto watcher = std::make_shared<counting_subscriber>();
  std::promise<read_result> subscribed;
  auto subscribed_future = subscribed.get_future();
  shared.get(key)->subscribe(watcher, std::nullopt, [&](read_result r) { subscribed.set_value(std::move(r)); });
  ASSERT_EQ(wait(subscribed_future).snap->data, "hello world");
  snapshot after{2, std::string(ot::type_uri), "", create_record{"a", 1, 0}};
  commit_behind_the_actors_back(op_record{"other", 1, 1, ot::op{C::insert(">")}, 0}, after);
  // A delete and an astral insert: the undo must restore exactly the old text.
  auto r = submit_to(shared, "b", 1, 1, ot::op{C::skip(5), C::erase(6), C::insert("\U0001F600")});
  ASSERT_FALSE(r.error) << r.error->code << " " << r.error->message;
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(storage.commits.load(), 3);  // create, the lost race, the retry
  auto snap = fetch_from(shared).snap;
  EXPECT_EQ(snap->version, 3u);
  EXPECT_EQ(snap->data, ">hello\U0001F600");
  EXPECT_EQ(watcher->ops, 2);  // the other writer's op (caught up), then ours
}

TEST_F(DocumentTest, SharedStoreCommitWhoseReplyWasLostIsAckedOnce) {
  silent_feed feed;
  registry shared(io.get_executor(), storage, document_options{}, nullptr, &feed);
  ASSERT_FALSE(submit_to(shared, "a", 1, 0, oplog::create_body{std::string(ot::type_uri), "abc"}).error);
  storage.lose_replies = 1;
  auto r = submit_to(shared, "a", 2, 1, ot::op{C::insert("X")});
  ASSERT_FALSE(r.error) << r.error->code << " " << r.error->message;
  EXPECT_EQ(r.version, 1u);
  auto snap = fetch_from(shared).snap;
  EXPECT_EQ(snap->version, 2u);
  EXPECT_EQ(snap->data, "Xabc");  // applied once
}

TEST_F(DocumentTest, SharedStoreFailureIsRetriedThenReported) {
  silent_feed feed;
  document_options options;
  options.max_submit_retries = 3;
  registry shared(io.get_executor(), storage, options, nullptr, &feed);
  ASSERT_FALSE(submit_to(shared, "a", 1, 0, oplog::create_body{std::string(ot::type_uri), "abc"}).error);
  storage.fail_commits = 1;  // a passing failure: the retry commits
  auto ok = submit_to(shared, "a", 2, 1, ot::op{C::insert("X")});
  ASSERT_FALSE(ok.error);
  EXPECT_EQ(fetch_from(shared).snap->data, "Xabc");
  storage.fail_commits = 100;  // down for good: an error, nothing acked
  auto failed = submit_to(shared, "a", 3, 2, ot::op{C::insert("Y")});
  ASSERT_TRUE(failed.error);
  EXPECT_EQ(failed.error->code, "ERR_DATABASE_UNAVAILABLE");
  storage.fail_commits = 0;
  auto snap = fetch_from(shared).snap;
  EXPECT_EQ(snap->version, 2u);
  EXPECT_EQ(snap->data, "Xabc");
}

TEST_F(DocumentTest, SharedStoreBatchesAreAllOrNothingAndALostBatchIsUndoneWhole) {
  ASSERT_TRUE(storage.atomic_batches());
  silent_feed feed;
  registry shared(io.get_executor(), storage, document_options{}, nullptr, &feed);
  ASSERT_FALSE(submit_to(shared, "a", 1, 0, oplog::create_body{std::string(ot::type_uri), "abc"}).error);
  auto watcher = std::make_shared<counting_subscriber>();
  std::promise<read_result> subscribed;
  auto subscribed_future = subscribed.get_future();
  shared.get(key)->subscribe(watcher, std::nullopt, [&](read_result r) { subscribed.set_value(std::move(r)); });
  ASSERT_EQ(wait(subscribed_future).snap->data, "abc");
  // Another instance commits v1 behind the actor's back: the actor's first
  // batch loses the race as a whole.
  snapshot after{2, std::string(ot::type_uri), "", create_record{"a", 1, 0}};
  commit_behind_the_actors_back(op_record{"other", 1, 1, ot::op{C::skip(3), C::insert("!")}, 0}, after);

  const int batches_before = storage.batches.load();
  constexpr std::size_t writers = 20;
  std::vector<std::promise<submit_result>> promises(writers);
  std::vector<std::future<submit_result>> results;
  for (std::size_t i = 0; i < writers; ++i) {
    results.push_back(promises[i].get_future());
    // Each deletes one letter or inserts, all made at v1 (before "!").
    ot::op edit = i == 0 ? ot::op{C::erase("a")} : ot::op{C::skip(1), C::insert(std::to_string(i) + ";")};
    shared.get(key)->submit(submission{"w" + std::to_string(i), 1, 1, std::move(edit)},
                            [&promises, i](submit_result r) { promises[i].set_value(std::move(r)); });
  }
  std::set<std::uint64_t> versions;
  for (auto& f : results) {
    auto r = wait(f);
    ASSERT_FALSE(r.error) << r.error->code << " " << r.error->message;
    versions.insert(r.version);
  }
  EXPECT_EQ(versions.size(), writers);
  EXPECT_EQ(*versions.begin(), 2u);
  // One lost batch and one retried batch, not one commit per op.
  EXPECT_LE(storage.batches.load() - batches_before, 4);
  auto snap = fetch_from(shared).snap;
  EXPECT_EQ(snap->version, 2u + writers);
  EXPECT_EQ(snap->data.find('a'), std::string::npos);
  EXPECT_NE(snap->data.find("bc!"), std::string::npos);
  for (std::size_t i = 1; i < writers; ++i) EXPECT_NE(snap->data.find(std::to_string(i) + ";"), std::string::npos) << i;
  EXPECT_EQ(watcher->ops, 1 + static_cast<int>(writers));
  // The store's log replays to the same text: nothing of the lost batch stuck.
  std::promise<ot::result<store::loaded_document>> loaded;
  auto loaded_future = loaded.get_future();
  storage.load(key, std::nullopt, [&](ot::result<store::loaded_document> r) { loaded.set_value(std::move(r)); });
  auto stored = wait(loaded_future);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->version_reached(), 2u + writers);
}

// While the store does not answer (a Redis failover), a subscription waits for it instead of failing:
// the sharedb client never retries a failed (re)subscription. Submits still fail at once.
TEST_F(DocumentTest, ASubscriptionWaitsForAStoreThatDoesNotAnswerAndIsServedOnceItDoes) {
  held_reads_observer observed;
  auto shared = shared_after_create({}, &observed, 4);
  const int loads_before = storage.loads.load();
  auto watcher = std::make_shared<counting_subscriber>();
  std::promise<read_result> subscribed;
  auto subscribed_future = subscribed.get_future();
  const auto asked = std::chrono::steady_clock::now();
  shared->get(key)->subscribe(watcher, std::nullopt, [&](read_result r) { subscribed.set_value(std::move(r)); });
  auto refused = submit_to(*shared, "b", 1, 1, ot::op{C::insert("X")});
  ASSERT_TRUE(refused.error);
  EXPECT_EQ(refused.error->code, "ERR_DATABASE_UNAVAILABLE");
  auto r = wait(subscribed_future);
  ASSERT_FALSE(r.error) << r.error->code;
  EXPECT_EQ(r.snap->data, "abc");
  EXPECT_GE(storage.loads.load() - loads_before, 5);                   // four failed loads, then one that served
  EXPECT_GE(std::chrono::steady_clock::now() - asked, 100ms + 200ms);  // with backoff between them
  EXPECT_EQ(observed.served_, 1);
  EXPECT_EQ(observed.failed_, 0);
  // It is subscribed: the next op reaches it.
  ASSERT_FALSE(submit_to(*shared, "b", 2, 1, ot::op{C::insert("Y")}).error);
  EXPECT_EQ(watcher->ops, 1);
}

TEST_F(DocumentTest, AHeldReadFailsOnceTheWaitRunsOut) {
  held_reads_observer observed;
  document_options options;
  options.max_store_wait = 700ms;
  auto shared = shared_after_create(options, &observed, 1000000);
  std::promise<read_result> fetched;
  auto fetched_future = fetched.get_future();
  const auto asked = std::chrono::steady_clock::now();
  shared->get(key)->fetch(std::nullopt, [&](read_result r) { fetched.set_value(std::move(r)); });
  auto r = wait(fetched_future);
  const auto waited = std::chrono::steady_clock::now() - asked;
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, "ERR_DATABASE_UNAVAILABLE");
  EXPECT_GE(waited, 300ms);  // it waited for several loads
  EXPECT_LE(waited, 700ms + 500ms);
  EXPECT_EQ(observed.failed_, 1);
  EXPECT_EQ(observed.served_, 0);
  // The document does not keep trying for nobody.
  const int loads = storage.loads.load();
  io.run_for(1500ms);
  io.restart();
  EXPECT_EQ(storage.loads.load(), loads);
  storage.fail_loads = 0;
  EXPECT_EQ(fetch_from(*shared).snap->data, "abc");
}

TEST_F(DocumentTest, WithNoWaitAReadFailsAtOnce) {
  held_reads_observer observed;
  document_options options;
  options.max_store_wait = 0ms;
  auto shared = shared_after_create(options, &observed, 1);
  auto r = fetch_from(*shared);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, "ERR_DATABASE_UNAVAILABLE");
  EXPECT_EQ(storage.loads.load(), 1 + 1);  // the create's load, and this one
  EXPECT_EQ(observed.failed_ + observed.served_, 0);
}

// A connection that unsubscribes (or closes) while its subscription waits must not be subscribed
// once the store answers: the subscription ends with the error at the unsubscribe.
TEST_F(DocumentTest, AnUnsubscribeEndsAHeldSubscription) {
  held_reads_observer observed;
  auto shared = shared_after_create({}, &observed, 1000000);
  auto gone = std::make_shared<counting_subscriber>();
  auto staying = std::make_shared<counting_subscriber>();
  std::promise<read_result> gone_answer;
  std::promise<read_result> staying_answer;
  auto gone_future = gone_answer.get_future();
  auto staying_future = staying_answer.get_future();
  shared->get(key)->subscribe(gone, std::nullopt, [&](read_result r) { gone_answer.set_value(std::move(r)); });
  shared->get(key)->subscribe(staying, std::nullopt, [&](read_result r) { staying_answer.set_value(std::move(r)); });
  io.run_for(300ms);  // a few failed loads: both wait
  io.restart();
  ASSERT_EQ(gone_future.wait_for(0s), std::future_status::timeout);
  bool unsubscribed = false;
  shared->get(key)->unsubscribe(gone.get(), [&] { unsubscribed = true; });
  io.run_for(1500ms);  // the next load fails: the unsubscribe is done, its subscription ends
  io.restart();
  EXPECT_TRUE(unsubscribed);
  ASSERT_EQ(gone_future.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(gone_future.get().error->code, "ERR_DATABASE_UNAVAILABLE");
  storage.fail_loads = 0;
  auto r = wait(staying_future);
  ASSERT_FALSE(r.error);
  ASSERT_FALSE(submit_to(*shared, "b", 1, 1, ot::op{C::insert("X")}).error);
  EXPECT_EQ(staying->ops, 1);
  EXPECT_EQ(gone->ops, 0);
  EXPECT_EQ(observed.served_, 1);
  EXPECT_EQ(observed.failed_, 1);
}

// The wait counts from when the client asked: the reads of a bulk request, issued a few at a time,
// share one deadline.
TEST_F(DocumentTest, AHeldReadWaitsFromWhenTheClientAsked) {
  document_options options;
  options.max_store_wait = 5s;
  auto shared = shared_after_create(options, nullptr, 1000000);
  std::promise<read_result> fetched;
  auto fetched_future = fetched.get_future();
  const auto started = std::chrono::steady_clock::now();
  shared->get(key)->fetch(
      std::nullopt, [&](read_result r) { fetched.set_value(std::move(r)); }, started - 4800ms);
  auto r = wait(fetched_future);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, "ERR_DATABASE_UNAVAILABLE");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
}

// Requests that keep arriving while reads wait do not each start a load: the document tries the
// store on its backoff, once per try.
TEST_F(DocumentTest, RequestsArrivingWhileReadsWaitDoNotMultiplyTheLoads) {
  auto shared = shared_after_create({}, nullptr, 1000000);
  const int loads_before = storage.loads.load();
  int answered = 0;
  for (int i = 0; i < 60; ++i) {
    shared->get(key)->fetch(std::nullopt, [&](read_result) { ++answered; });
    io.run_for(25ms);  // 1.5 s in all
    io.restart();
  }
  const int loads = storage.loads.load() - loads_before;
  EXPECT_EQ(answered, 0);
  // 100, 200, 400, 800 ms apart, then every second: about 6 in 1.5 s (not one per request).
  EXPECT_LE(loads, 10) << loads;
  EXPECT_GE(loads, 3) << loads;
  storage.fail_loads = 0;
  io.run_for(1500ms);
  io.restart();
  EXPECT_EQ(answered, 60);
}

// A resubscription from a version older than the document's cache reads the ops from the store;
// when the store does not answer, it waits too.
TEST_F(DocumentTest, AReadOfOldOpsWaitsForTheStore) {
  document_options options;
  options.recent_ops = 2;
  auto shared = std::make_unique<registry>(io.get_executor(), storage, options, nullptr, &feed_);
  ASSERT_FALSE(submit_to(*shared, "a", 1, 0, oplog::create_body{std::string(ot::type_uri), ""}).error);
  auto watcher = std::make_shared<counting_subscriber>();
  std::promise<read_result> first;
  auto first_future = first.get_future();
  shared->get(key)->subscribe(watcher, std::nullopt, [&](read_result r) { first.set_value(std::move(r)); });
  ASSERT_FALSE(wait(first_future).error);
  for (std::uint64_t v = 1; v <= 6; ++v) {
    ASSERT_FALSE(submit_to(*shared, "a", v + 1, v, ot::op{C::insert("x")}).error);
  }
  storage.fail_load_ops = 1;
  storage.fail_loads = 2;
  auto late = std::make_shared<counting_subscriber>();
  std::promise<read_result> caught_up;
  auto caught_up_future = caught_up.get_future();
  shared->get(key)->subscribe(late, 1, [&](read_result r) { caught_up.set_value(std::move(r)); });
  auto r = wait(caught_up_future);
  ASSERT_FALSE(r.error) << r.error->code;
  EXPECT_EQ(r.ops.size(), 6u);  // versions 1 to 6
  EXPECT_EQ(storage.fail_load_ops.load(), 0);
  EXPECT_EQ(storage.fail_loads.load(), 0);
}

// With place_on, a document lives on the context of the thread that opened it first (a
// connection's), and its handlers run there; one opened from no context's thread (a store's)
// goes to each context in turn.
TEST(RegistryPlacement, ADocumentLivesOnItsFirstOpenersContext) {
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::io_context::executor_type> executors;
  for (int i = 0; i < 2; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    executors.push_back(contexts.back()->get_executor());
  }
  auto storage = st::make_memory_store();
  registry documents(contexts[0]->get_executor(), *storage, document_options{});
  documents.place_on(executors);
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  for (auto& c : contexts) {
    work.push_back(asio::make_work_guard(*c));
    threads.emplace_back([c = c.get()] { c->run(); });
  }
  // Which context runs the handlers of a subscription to `id` made from `from` (nullptr: this
  // thread). Subscribed, the document stays open.
  auto watcher = std::make_shared<counting_subscriber>();
  std::vector<subscription_handle> handles;
  std::mutex handles_mutex;
  auto home_of = [&](const std::string& id, asio::io_context* from) {
    std::promise<int> home;
    auto open = [&] {
      auto handle = documents.subscribe(
          {"c", id}, watcher, std::nullopt,
          [&](read_result) {
            int index = -1;
            for (int i = 0; i < 2; ++i) {
              if (executors[static_cast<std::size_t>(i)].running_in_this_thread()) index = i;
            }
            home.set_value(index);
          },
          std::chrono::steady_clock::now());
      std::lock_guard lock(handles_mutex);
      handles.push_back(std::move(handle));
    };
    if (from) {
      asio::post(*from, open);
    } else {
      open();
    }
    auto future = home.get_future();
    EXPECT_EQ(future.wait_for(10s), std::future_status::ready);
    return future.get();
  };
  EXPECT_EQ(home_of("opened-on-1", contexts[1].get()), 1);
  EXPECT_EQ(home_of("opened-on-0", contexts[0].get()), 0);
  // Once open, it stays where it is, whoever asks.
  EXPECT_EQ(home_of("opened-on-1", contexts[0].get()), 1);
  std::set<int> elsewhere{home_of("from-no-context-a", nullptr), home_of("from-no-context-b", nullptr)};
  EXPECT_EQ(elsewhere, (std::set<int>{0, 1}));
  work.clear();
  for (auto& t : threads) t.join();
}

}  // namespace
}  // namespace otsync::doc
