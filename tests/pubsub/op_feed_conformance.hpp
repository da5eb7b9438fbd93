// The conformance suite every op feed passes, the pub/sub counterpart of
// tests/store/store_conformance.hpp. Instances share one backend (a store
// every instance commits to, whose commits reach every instance's feed); a
// backend's test file defines a traits type with
//
//   struct shared;                                       // the backend the instances share
//   static std::unique_ptr<shared> open_shared();        // fresh and empty
//   static backend::backend open_instance(shared&, const std::string& instance_id);
//   static std::string skip_reason();                    // optional: non-empty skips the suite
//
// and instantiates the suite:
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Memory, OpFeedConformance, ::testing::Types<memory_traits>);
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "otsync/backend/open.hpp"
#include "store/store_calls.hpp"

namespace otsync::pubsub::test {

using namespace std::chrono_literals;
using C = ot::component;
using store::test::doc_history;

/// Generous: the suite also runs under the sanitizers on 2 busy cores.
inline constexpr auto delivery_wait = 15s;
/// How long "nothing more arrives" is watched for.
inline constexpr auto quiet_wait = 300ms;

/// What one subscription received, in order. Its handlers share its state,
/// so a feed that calls one after a failed assertion ended the test early
/// writes into live memory.
class recorder {
 public:
  op_feed::op_handler on_op() {
    return [state = state_](oplog::op_record op) {
      std::lock_guard lock(state->mutex);
      state->ops.push_back(std::move(op));
      state->changed.notify_all();
    };
  }
  op_feed::resync_handler on_resync() {
    return [state = state_] {
      std::lock_guard lock(state->mutex);
      ++state->resyncs;
      state->changed.notify_all();
    };
  }
  bool wait_ops(std::size_t count, std::chrono::milliseconds timeout = delivery_wait) {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return state_->ops.size() >= count; });
  }
  bool wait_resyncs(int count, std::chrono::milliseconds timeout = delivery_wait) {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return state_->resyncs >= count; });
  }
  std::vector<oplog::op_record> ops() {
    std::lock_guard lock(state_->mutex);
    return state_->ops;
  }
  int resyncs() {
    std::lock_guard lock(state_->mutex);
    return state_->resyncs;
  }

 private:
  struct state {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<oplog::op_record> ops;
    int resyncs = 0;
  };
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// Appends `text` at the end of ASCII `data`.
inline ot::op append_text(const std::string& data, const std::string& text) {
  if (data.empty()) return ot::op{C::insert(text)};
  return ot::op{C::skip(data.size()), C::insert(text)};
}

/// Waits until `predicate` holds, polling; false on timeout.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = delivery_wait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

template <class Traits>
class OpFeedConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (requires { Traits::skip_reason(); }) {
      if (const std::string reason = Traits::skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
    }
    shared_ = Traits::open_shared();
    ASSERT_TRUE(shared_);
  }
  void TearDown() override {
    // Feeds first: their handlers refer to the test's recorders.
    for (auto& [id, instance] : instances_) instance.feed.reset();
    instances_.clear();
    shared_.reset();
  }

  /// Instance `n` (opened on first use, with its feed connected).
  backend::backend& instance(int n) {
    auto found = instances_.find(n);
    if (found != instances_.end()) return found->second;
    auto& opened = instances_[n] = Traits::open_instance(*shared_, "instance-" + std::to_string(n));
    EXPECT_TRUE(opened.store && opened.feed);
    EXPECT_TRUE(eventually([&] { return opened.feed->connected(); })) << "feed of instance " << n << " not connected";
    return opened;
  }
  store::store& store_of(int n) { return *instance(n).store; }
  op_feed& feed_of(int n) { return *instance(n).feed; }

  /// Subscribes and waits for the resync that says the subscription is in place.
  std::uint64_t subscribe(int n, const store::doc_key& key, recorder& to) {
    const int before = to.resyncs();
    const std::uint64_t token = feed_of(n).subscribe(key, to.on_op(), to.on_resync());
    EXPECT_TRUE(to.wait_resyncs(before + 1)) << "no resync after subscribing";
    return token;
  }

  /// Commits an edit at `doc`'s head from instance `n` (as author `src`).
  void commit_edit(int n, doc_history& doc, const std::string& text, const std::string& src = "author") {
    auto request =
        doc.next(append_text(doc.head.data, text), false, 1000 + static_cast<std::int64_t>(doc.head.version), src);
    ASSERT_EQ(store::test::commit(store_of(n), request), std::error_code{});
    doc.accept(request);
  }
  void create(int n, doc_history& doc) {
    auto request = doc.next(oplog::create_body{std::string(store::test::text_type), ""}, false, 1000, "author");
    ASSERT_EQ(store::test::commit(store_of(n), request), std::error_code{});
    doc.accept(request);
  }

  std::unique_ptr<typename Traits::shared> shared_;
  std::map<int, backend::backend> instances_;
};

TYPED_TEST_SUITE_P(OpFeedConformance);

TYPED_TEST_P(OpFeedConformance, SubscribingCallsTheResyncHandler) {
  recorder got;
  this->feed_of(1).subscribe({"c", "d"}, got.on_op(), got.on_resync());
  EXPECT_TRUE(got.wait_resyncs(1)) << "the subscriber was never told to catch up";
  EXPECT_TRUE(this->feed_of(1).connected());
  EXPECT_TRUE(this->feed_of(1).health().connected);
}

TYPED_TEST_P(OpFeedConformance, AnotherInstancesOpsArriveOnceInCommitOrder) {
  recorder got;
  doc_history doc{{"c", "d"}};
  this->subscribe(1, doc.key, got);
  this->create(0, doc);
  for (int i = 0; i < 40; ++i) this->commit_edit(0, doc, std::to_string(i % 10));
  ASSERT_TRUE(got.wait_ops(doc.log.size())) << "got " << got.ops().size() << " of " << doc.log.size();
  std::this_thread::sleep_for(quiet_wait);
  EXPECT_EQ(got.ops(), doc.log) << "not each op once, in commit order";
  EXPECT_EQ(this->feed_of(1).stats().messages, doc.log.size());
}

TYPED_TEST_P(OpFeedConformance, AnAtomicBatchArrivesAsItsOpsInOrder) {
  recorder got;
  doc_history doc{{"c", "batch"}};
  this->subscribe(1, doc.key, got);
  this->create(0, doc);
  if (!this->store_of(0).atomic_batches()) GTEST_SKIP() << "the store takes one op per commit";
  std::vector<store::commit_request> batch;
  doc_history planned = doc;
  for (int i = 0; i < 5; ++i) {
    batch.push_back(planned.next(append_text(planned.head.data, "x"), false, 2000, "author"));
    planned.accept(batch.back());
  }
  ASSERT_EQ(store::test::commit_all(this->store_of(0), batch), std::error_code{});
  ASSERT_TRUE(got.wait_ops(planned.log.size()));
  std::this_thread::sleep_for(quiet_wait);
  EXPECT_EQ(got.ops(), planned.log);
}

TYPED_TEST_P(OpFeedConformance, CommitsOfSeveralInstancesArriveInCommitOrder) {
  recorder got;
  doc_history doc{{"c", "shared"}};
  this->subscribe(2, doc.key, got);
  this->create(0, doc);
  for (int i = 0; i < 20; ++i) this->commit_edit(i % 2, doc, "ab", i % 2 ? "author-1" : "author-0");
  ASSERT_TRUE(got.wait_ops(doc.log.size()));
  std::this_thread::sleep_for(quiet_wait);
  EXPECT_EQ(got.ops(), doc.log);
}

TYPED_TEST_P(OpFeedConformance, AnInstanceSkipsItsOwnOps) {
  recorder own;
  doc_history doc{{"c", "own"}};
  this->subscribe(0, doc.key, own);
  this->create(0, doc);
  for (int i = 0; i < 5; ++i) this->commit_edit(0, doc, "a");
  // Then one op of another instance: once it arrives, the own ones were seen (and skipped) before it.
  this->commit_edit(1, doc, "b");
  ASSERT_TRUE(own.wait_ops(1));
  std::this_thread::sleep_for(quiet_wait);
  ASSERT_EQ(own.ops().size(), 1U) << "an instance's own ops came back to it";
  EXPECT_EQ(own.ops().front(), doc.log.back());
  EXPECT_EQ(this->feed_of(0).stats().own_skipped, 6U);
}

TYPED_TEST_P(OpFeedConformance, OnlyTheSubscribedDocumentsOpsArrive) {
  recorder got;
  doc_history wanted{{"c", "wanted"}};
  doc_history other{{"c", "other"}};
  doc_history other_collection{{"c2", "wanted"}};
  this->subscribe(1, wanted.key, got);
  this->create(0, other);
  this->create(0, other_collection);
  this->commit_edit(0, other, "x");
  this->create(0, wanted);
  ASSERT_TRUE(got.wait_ops(1));
  std::this_thread::sleep_for(quiet_wait);
  EXPECT_EQ(got.ops(), wanted.log);
}

TYPED_TEST_P(OpFeedConformance, UnsubscribingStopsDelivery) {
  recorder got;
  recorder marker;
  doc_history doc{{"c", "left"}};
  doc_history later{{"c", "later"}};
  const std::uint64_t token = this->subscribe(1, doc.key, got);
  this->create(0, doc);
  ASSERT_TRUE(got.wait_ops(1));
  this->feed_of(1).unsubscribe(doc.key, token);
  // Subscribed after the unsubscription, so in place after it too.
  this->subscribe(1, later.key, marker);
  for (int i = 0; i < 3; ++i) this->commit_edit(0, doc, "x");
  this->create(0, later);
  ASSERT_TRUE(marker.wait_ops(1));
  std::this_thread::sleep_for(quiet_wait);
  EXPECT_EQ(got.ops().size(), 1U) << "ops arrived after unsubscribe";
}

TYPED_TEST_P(OpFeedConformance, EverySubscriberOfADocumentGetsEachOp) {
  recorder first;
  recorder second;
  doc_history doc{{"c", "two"}};
  const std::uint64_t first_token = this->subscribe(1, doc.key, first);
  this->feed_of(1).subscribe(doc.key, second.on_op(), second.on_resync());
  this->create(0, doc);
  this->commit_edit(0, doc, "x");
  ASSERT_TRUE(first.wait_ops(2));
  ASSERT_TRUE(second.wait_ops(2));
  EXPECT_EQ(first.ops(), doc.log);
  EXPECT_EQ(second.ops(), doc.log);
  // One subscriber leaving does not end the other's subscription.
  this->feed_of(1).unsubscribe(doc.key, first_token);
  this->commit_edit(0, doc, "y");
  ASSERT_TRUE(second.wait_ops(3));
  std::this_thread::sleep_for(quiet_wait);
  EXPECT_EQ(second.ops(), doc.log);
  EXPECT_EQ(first.ops().size(), 2U);
}

TYPED_TEST_P(OpFeedConformance, ResubscribingResyncsAgain) {
  recorder got;
  doc_history doc{{"c", "again"}};
  const std::uint64_t token = this->subscribe(1, doc.key, got);
  this->feed_of(1).unsubscribe(doc.key, token);
  this->subscribe(1, doc.key, got);
  EXPECT_GE(got.resyncs(), 2);
  this->create(0, doc);
  ASSERT_TRUE(got.wait_ops(1));
  std::this_thread::sleep_for(quiet_wait);
  EXPECT_EQ(got.ops(), doc.log);
}

TYPED_TEST_P(OpFeedConformance, ManyDocumentsEachGetTheirOwnOps) {
  constexpr int documents = 60;
  std::vector<std::unique_ptr<recorder>> got;
  std::vector<doc_history> docs;
  for (int i = 0; i < documents; ++i) {
    got.push_back(std::make_unique<recorder>());
    docs.emplace_back(store::doc_key{"many", "doc-" + std::to_string(i)});
    this->feed_of(1).subscribe(docs.back().key, got.back()->on_op(), got.back()->on_resync());
  }
  for (auto& g : got) ASSERT_TRUE(g->wait_resyncs(1));
  for (int round = 0; round < 3; ++round) {
    for (auto& doc : docs) {
      if (round == 0) {
        this->create(0, doc);
      } else {
        this->commit_edit(0, doc, std::to_string(round));
      }
    }
  }
  for (int i = 0; i < documents; ++i) {
    ASSERT_TRUE(got[static_cast<std::size_t>(i)]->wait_ops(3)) << "document " << i;
  }
  std::this_thread::sleep_for(quiet_wait);
  for (std::size_t i = 0; i < docs.size(); ++i) EXPECT_EQ(got[i]->ops(), docs[i].log) << "document " << i;
}

REGISTER_TYPED_TEST_SUITE_P(OpFeedConformance, SubscribingCallsTheResyncHandler,
                            AnotherInstancesOpsArriveOnceInCommitOrder, AnAtomicBatchArrivesAsItsOpsInOrder,
                            CommitsOfSeveralInstancesArriveInCommitOrder, AnInstanceSkipsItsOwnOps,
                            OnlyTheSubscribedDocumentsOpsArrive, UnsubscribingStopsDelivery,
                            EverySubscriberOfADocumentGetsEachOp, ResubscribingResyncsAgain,
                            ManyDocumentsEachGetTheirOwnOps);

}  // namespace otsync::pubsub::test
