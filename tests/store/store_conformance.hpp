// The conformance suite every store passes. A backend's test file defines a
// traits type with `static std::unique_ptr<store> open(const
// std::filesystem::path& dir)` (a fresh, empty store keeping its files under
// `dir`) and instantiates the suite; a backend that needs an outside server
// may also define `static std::string skip_reason()` (non-empty: the suite
// is skipped with that message):
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Memory, StoreConformance, ::testing::Types<memory_traits>);
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "store_calls.hpp"
#include "temp_dir.hpp"

namespace otsync::store::test {

using C = ot::component;

template <class Traits>
class StoreConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (requires { Traits::skip_reason(); }) {
      if (const std::string reason = Traits::skip_reason(); !reason.empty()) GTEST_SKIP() << reason;
    }
    store_ = Traits::open(dir_.path());
    ASSERT_TRUE(store_);
  }
  void TearDown() override { store_.reset(); }

  store& s() { return *store_; }

  temp_dir dir_;
  std::unique_ptr<store> store_;
};

TYPED_TEST_SUITE_P(StoreConformance);

// A history with every kind of op, unicode, a delete and a re-create.
inline void write_mixed_history(store& s, doc_history& doc, const std::set<std::uint64_t>& snapshot_versions) {
  std::vector<oplog::op_body> bodies{
      oplog::create_body{text_type, "héllo"},
      ot::op{C::skip(5), C::insert(" wörld")},
      ot::op{C::erase("h"), C::skip(4), C::insert("🙂")},
      ot::op{C::skip(2), C::erase(3)},
      ot::op{C::insert("𝄞 ")},
      oplog::delete_body{},
      oplog::create_body{text_type, ""},
      ot::op{C::insert("again")},
      ot::op{C::skip(5), C::insert("!")},
      ot::op{C::erase(1)},
      ot::op{C::skip(2), C::insert("—")},
  };
  for (auto& body : bodies) {
    const bool snapshot = snapshot_versions.contains(doc.head.version + 1);
    ASSERT_EQ(doc.append(s, std::move(body), snapshot, static_cast<std::int64_t>(1000 + doc.head.version)),
              std::error_code{});
  }
}

/// Checks `load` at every version (and past the head, and at the head) against
/// a replay of the full log: the base is the greatest stored snapshot at or
/// below the version, and only the ops after it come back.
inline void expect_loads_every_version(store& s, const doc_history& doc,
                                       const std::set<std::uint64_t>& snapshot_versions) {
  const std::uint64_t head = doc.head.version;
  for (std::uint64_t asked = 0; asked <= head + 2; ++asked) {
    SCOPED_TRACE("version " + std::to_string(asked));
    const std::uint64_t reached = std::min(asked, head);
    auto loaded = load(s, doc.key, asked);
    ASSERT_TRUE(loaded) << loaded.error().message();
    std::uint64_t expected_base = 0;
    for (auto v : snapshot_versions) {
      if (v <= reached) expected_base = v;
    }
    EXPECT_EQ(loaded->base, doc.at(expected_base));
    EXPECT_EQ(loaded->ops, std::vector(doc.log.begin() + static_cast<std::ptrdiff_t>(expected_base),
                                       doc.log.begin() + static_cast<std::ptrdiff_t>(reached)));
    EXPECT_EQ(loaded->version_reached(), reached);
    auto replayed = oplog::replay(loaded->base, loaded->ops);
    ASSERT_TRUE(replayed);
    EXPECT_EQ(*replayed, doc.at(reached));
  }
  auto at_head = load(s, doc.key);
  ASSERT_TRUE(at_head);
  EXPECT_EQ(at_head->version_reached(), head);
  EXPECT_EQ(*oplog::replay(at_head->base, at_head->ops), doc.head);
}

TYPED_TEST_P(StoreConformance, NeverWrittenDocumentLoadsAsVersionZeroUntyped) {
  const doc_key key{"notes", "missing"};
  for (std::optional<std::uint64_t> version :
       {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{0}, std::optional<std::uint64_t>{5}}) {
    auto loaded = load(this->s(), key, version);
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_EQ(loaded->base, oplog::snapshot{});
    EXPECT_TRUE(loaded->ops.empty());
  }
  EXPECT_TRUE(load_ops(this->s(), key, 0)->empty());
  EXPECT_EQ(*version_at(this->s(), key, 1'000'000), 0U);
  EXPECT_TRUE(list_documents(this->s(), "notes")->empty());
}

TYPED_TEST_P(StoreConformance, LoadsEveryVersionOfAHistory) {
  doc_history doc{{"notes", "mixed"}};
  write_mixed_history(this->s(), doc, {});
  expect_loads_every_version(this->s(), doc, {});
}

TYPED_TEST_P(StoreConformance, LoadStartsFromTheGreatestStoredSnapshotAtOrBelow) {
  // Snapshots at 2 and 5, at 6 (just after the delete: untyped, creator kept)
  // and at the head (11): loads start there and return only later ops.
  const std::set<std::uint64_t> snapshots{2, 5, 6, 11};
  doc_history doc{{"notes", "snap"}};
  write_mixed_history(this->s(), doc, snapshots);
  ASSERT_EQ(doc.head.version, 11U);
  expect_loads_every_version(this->s(), doc, snapshots);
  auto at_head = load(this->s(), doc.key);
  ASSERT_TRUE(at_head);
  EXPECT_EQ(at_head->base, doc.head);
  EXPECT_TRUE(at_head->ops.empty());
}

TYPED_TEST_P(StoreConformance, OpRecordsRoundTripExactly) {
  doc_history doc{{"c", "round-trip"}};
  std::vector<commit_request> requests;
  auto add = [&](oplog::op_body body, std::string src, std::uint64_t seq, std::int64_t ts, std::string author = {}) {
    commit_request request = doc.next(std::move(body), false, ts, std::move(src));
    request.op.seq = seq;
    request.op.author = std::move(author);
    ASSERT_EQ(commit(this->s(), request), std::error_code{});
    doc.accept(request);
    requests.push_back(request);
  };
  add(oplog::create_body{text_type, ""}, "", 0, 0);
  add(ot::op{C::insert("a\"b\\c\n\t\x01 é 😀")}, "client-1", 1, 1'700'000'000'123);
  add(ot::op{C::skip(2), C::erase("b\\c")}, "client-2", (1ULL << 63U) + 5U, -5);       // seq past INT64_MAX
  add(ot::op{C::erase(2), C::skip(1), C::erase(1)}, "c", 3, 42, "alice@example.com");  // an author (token subject)
  add(ot::op{C::insert("x")}, "c", 6, 45, "bob \"é\" 😀");
  add(oplog::delete_body{}, "c", 4, 43);
  add(oplog::create_body{"urn:other-type", "{\"json\": [1, 2]}"}, "c", 5, 44);
  auto ops = load_ops(this->s(), doc.key, 0);
  ASSERT_TRUE(ops) << ops.error().message();
  ASSERT_EQ(ops->size(), requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) EXPECT_EQ((*ops)[i], requests[i].op) << "op " << i;
}

TYPED_TEST_P(StoreConformance, CompareAndSetConflictWritesNothing) {
  doc_history doc{{"c", "cas"}};
  ASSERT_FALSE(doc.append(this->s(), oplog::create_body{text_type, "a"}));
  ASSERT_FALSE(doc.append(this->s(), ot::op{C::insert("b")}));

  commit_request stale = doc.next(ot::op{C::insert("x")}, true);
  stale.op.version = 1;  // behind the head
  stale.after.version = 2;
  EXPECT_EQ(commit(this->s(), stale), errc::version_conflict);
  commit_request ahead = doc.next(ot::op{C::insert("y")}, true);
  ahead.op.version = 3;  // past the head
  ahead.after.version = 4;
  EXPECT_EQ(commit(this->s(), ahead), errc::version_conflict);
  // A second create of a fresh document at version 0 loses too.
  doc_history other{{"c", "cas-new"}};
  commit_request first = other.next(oplog::create_body{text_type, "1"});
  commit_request second = other.next(oplog::create_body{text_type, "2"}, true);
  EXPECT_FALSE(commit(this->s(), first));
  EXPECT_EQ(commit(this->s(), second), errc::version_conflict);
  other.accept(first);

  EXPECT_EQ(*load_ops(this->s(), doc.key, 0), doc.log);
  EXPECT_EQ(*load_ops(this->s(), other.key, 0), other.log);
  auto loaded = load(this->s(), doc.key);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->base, oplog::snapshot{});  // no snapshot from a failed commit
  EXPECT_EQ(*oplog::replay(loaded->base, loaded->ops), doc.head);
  const std::vector<document_summary> expected{{"cas", 2, text_type}, {"cas-new", 1, text_type}};
  EXPECT_EQ(*list_documents(this->s(), "c"), expected);
}

// Stores with atomic batches commit consecutive ops all together or not at
// all; the others take one request and refuse more.
TYPED_TEST_P(StoreConformance, CommitAllIsAllOrNothing) {
  doc_history doc{{"c", "batch"}};
  ASSERT_FALSE(doc.append(this->s(), oplog::create_body{text_type, "a"}));
  auto batch_of = [](doc_history& tentative, std::vector<oplog::op_body> bodies) {
    std::vector<commit_request> requests;
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      requests.push_back(tentative.next(std::move(bodies[i]), i + 1 == bodies.size()));
      tentative.accept(requests.back());
    }
    return requests;
  };
  doc_history one = doc;
  ASSERT_FALSE(commit_all(this->s(), batch_of(one, {ot::op{C::insert("b")}})));
  doc = one;
  if (!this->s().atomic_batches()) {
    doc_history two = doc;
    EXPECT_EQ(commit_all(this->s(), batch_of(two, {ot::op{C::insert("c")}, ot::op{C::insert("d")}})),
              errc::invalid_argument);
    EXPECT_EQ(*load_ops(this->s(), doc.key, 0), doc.log);
    return;
  }
  doc_history three = doc;
  ASSERT_FALSE(commit_all(this->s(), batch_of(three, {ot::op{C::insert("c")}, oplog::delete_body{},
                                                      oplog::create_body{text_type, "new"}})));
  doc = three;
  // Behind the head: nothing of the batch is written.
  doc_history stale = doc;
  auto stale_batch = batch_of(stale, {ot::op{C::insert("x")}, ot::op{C::insert("y")}});
  for (auto& r : stale_batch) {
    --r.op.version;
    --r.after.version;
  }
  EXPECT_EQ(commit_all(this->s(), stale_batch), errc::version_conflict);
  // A later op of the batch already committed (a resend): nothing is written either.
  doc_history resend = doc;
  auto resend_batch = batch_of(resend, {ot::op{C::insert("x")}, ot::op{C::insert("y")}});
  resend_batch[1].op.src = doc.log[1].src;
  resend_batch[1].op.seq = doc.log[1].seq;
  EXPECT_EQ(commit_all(this->s(), resend_batch), errc::version_conflict);
  // Not consecutive: refused.
  doc_history gap = doc;
  auto gap_batch = batch_of(gap, {ot::op{C::insert("x")}, ot::op{C::insert("y")}});
  ++gap_batch[1].op.version;
  ++gap_batch[1].after.version;
  EXPECT_EQ(commit_all(this->s(), gap_batch), errc::invalid_argument);

  EXPECT_EQ(*load_ops(this->s(), doc.key, 0), doc.log);
  auto loaded = load(this->s(), doc.key);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->base, doc.at(5));  // the batch's last op stored a snapshot
  EXPECT_EQ(*oplog::replay(loaded->base, loaded->ops), doc.head);
}

TYPED_TEST_P(StoreConformance, MalformedRequestsAreInvalidArguments) {
  store& s = this->s();
  for (const doc_key& key : {doc_key{"", "id"}, doc_key{"c", ""}}) {
    EXPECT_EQ(load(s, key).error(), errc::invalid_argument);
    EXPECT_EQ(load_ops(s, key, 0).error(), errc::invalid_argument);
    EXPECT_EQ(version_at(s, key, 0).error(), errc::invalid_argument);
    doc_history doc{key};
    EXPECT_EQ(commit(s, doc.next(oplog::create_body{text_type, ""})), errc::invalid_argument);
  }
  EXPECT_EQ(list_documents(s, "").error(), errc::invalid_argument);
  EXPECT_EQ(load_ops(s, {"c", "d"}, 3, 2).error(), errc::invalid_argument);
  doc_history doc{{"c", "d"}};
  commit_request wrong_after = doc.next(oplog::create_body{text_type, ""});
  wrong_after.after.version = 5;
  EXPECT_EQ(commit(s, wrong_after), errc::invalid_argument);
  EXPECT_TRUE(load_ops(s, doc.key, 0)->empty());
}

TYPED_TEST_P(StoreConformance, LoadOpsReturnsTheAskedRange) {
  store& s = this->s();
  doc_history doc{{"c", "ranges"}};
  ASSERT_FALSE(doc.append(s, oplog::create_body{text_type, ""}));
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(doc.append(s, ot::op{C::insert(std::to_string(i))}));
  auto slice = [&](std::size_t from, std::size_t to) {
    return std::vector(doc.log.begin() + static_cast<std::ptrdiff_t>(from),
                       doc.log.begin() + static_cast<std::ptrdiff_t>(to));
  };
  EXPECT_EQ(*load_ops(s, doc.key, 0), doc.log);
  EXPECT_EQ(*load_ops(s, doc.key, 0, 5), doc.log);
  EXPECT_EQ(*load_ops(s, doc.key, 1, 3), slice(1, 3));
  EXPECT_EQ(*load_ops(s, doc.key, 3), slice(3, 5));
  EXPECT_EQ(*load_ops(s, doc.key, 4, 100), slice(4, 5));  // the log ends sooner
  EXPECT_TRUE(load_ops(s, doc.key, 3, 3)->empty());
  EXPECT_TRUE(load_ops(s, doc.key, 5)->empty());
  EXPECT_TRUE(load_ops(s, doc.key, 7, 9)->empty());
  EXPECT_EQ(load_ops(s, doc.key, 4, 3).error(), errc::invalid_argument);
  EXPECT_TRUE(load_ops(s, {"c", "other"}, 0, 10)->empty());
}

TYPED_TEST_P(StoreConformance, VersionAtCountsOpsAtOrBeforeTheTimestamp) {
  store& s = this->s();
  doc_history doc{{"c", "time"}};
  ASSERT_FALSE(doc.append(s, oplog::create_body{text_type, ""}, false, 100));
  ASSERT_FALSE(doc.append(s, ot::op{C::insert("a")}, false, 200));
  ASSERT_FALSE(doc.append(s, ot::op{C::insert("b")}, false, 200));
  ASSERT_FALSE(doc.append(s, ot::op{C::insert("c")}, true, 300));
  EXPECT_EQ(*version_at(s, doc.key, 50), 0U);
  EXPECT_EQ(*version_at(s, doc.key, 100), 1U);
  EXPECT_EQ(*version_at(s, doc.key, 199), 1U);
  EXPECT_EQ(*version_at(s, doc.key, 200), 3U);
  EXPECT_EQ(*version_at(s, doc.key, 299), 3U);
  EXPECT_EQ(*version_at(s, doc.key, 300), 4U);
  EXPECT_EQ(*version_at(s, doc.key, std::numeric_limits<std::int64_t>::max()), 4U);
  EXPECT_EQ(*version_at(s, doc.key, std::numeric_limits<std::int64_t>::min()), 0U);
  EXPECT_EQ(*version_at(s, {"c", "other"}, 300), 0U);
}

TYPED_TEST_P(StoreConformance, ListDocumentsInIdOrderWithPaging) {
  store& s = this->s();
  // Ids committed out of order, in two collections; one deleted.
  for (const char* id : {"m", "b", "z", "a", "k", "é", "B"}) {
    doc_history doc{{"notes", id}};
    ASSERT_FALSE(doc.append(s, oplog::create_body{text_type, id}));
    if (std::string_view(id) == "k") {
      ASSERT_FALSE(doc.append(s, oplog::delete_body{}));
    }
  }
  doc_history elsewhere{{"notes2", "a"}};
  ASSERT_FALSE(elsewhere.append(s, oplog::create_body{text_type, ""}));
  doc_history before{{"note", "zz"}};
  ASSERT_FALSE(before.append(s, oplog::create_body{text_type, ""}));

  auto ids = [](const std::vector<document_summary>& rows) {
    std::vector<std::string> out;
    for (const auto& row : rows) out.push_back(row.id);
    return out;
  };
  // Byte order: uppercase before lowercase, UTF-8 after ASCII.
  EXPECT_EQ(ids(*list_documents(s, "notes")), (std::vector<std::string>{"B", "a", "b", "k", "m", "z", "é"}));
  EXPECT_EQ(ids(*list_documents(s, "notes", "", 3)), (std::vector<std::string>{"B", "a", "b"}));
  EXPECT_EQ(ids(*list_documents(s, "notes", "b", 3)), (std::vector<std::string>{"k", "m", "z"}));
  EXPECT_EQ(ids(*list_documents(s, "notes", "c")), (std::vector<std::string>{"k", "m", "z", "é"}));
  EXPECT_EQ(ids(*list_documents(s, "notes", "é")), std::vector<std::string>{});
  EXPECT_TRUE(list_documents(s, "notes", "", 0)->empty());
  EXPECT_TRUE(list_documents(s, "unknown")->empty());
  const auto rows = *list_documents(s, "notes", "b", 2);
  const std::vector<document_summary> expected{{"k", 2, std::nullopt}, {"m", 1, text_type}};
  EXPECT_EQ(rows, expected);
}

TYPED_TEST_P(StoreConformance, ConcurrentCommitsFromSeveralThreadsLoseNothing) {
  store& s = this->s();
  constexpr int threads = 4;
  constexpr int docs_per_thread = 6;
  constexpr int ops_per_doc = 10;
  constexpr int hot_ops_per_thread = 8;
  const doc_key hot{"c", "hot"};
  ASSERT_FALSE(commit(s, doc_history(hot).next(oplog::create_body{text_type, ""})));

  std::vector<std::thread> workers;
  std::vector<std::vector<doc_history>> histories(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&s, &hot, &mine = histories[static_cast<std::size_t>(t)], t] {
      // Own documents: every commit issued without waiting (each doc's
      // versions in order), so several of one document can share a batch.
      std::vector<std::future<std::error_code>> pending;
      for (int d = 0; d < docs_per_thread; ++d) {
        // Appended piece by piece: GCC 12 -O3 warns falsely (-Wrestrict) on "t" + std::string.
        std::string id = std::to_string(t);
        id += '-';
        id += std::to_string(d);
        mine.emplace_back(doc_key{"c", id});
      }
      for (int k = 0; k < ops_per_doc; ++k) {
        for (auto& doc : mine) {
          commit_request request =
              k == 0 ? doc.next(oplog::create_body{text_type, "x"}) : doc.next(ot::op{C::insert(std::to_string(k))});
          auto promise = std::make_shared<std::promise<std::error_code>>();
          pending.push_back(promise->get_future());
          s.commit(request, [promise](std::error_code e) { promise->set_value(e); });
          doc.accept(request);
        }
      }
      for (auto& f : pending) EXPECT_EQ(f.get(), std::error_code{});
      // The shared document: load, append, retry on conflict.
      for (int k = 0; k < hot_ops_per_thread; ++k) {
        for (int attempt = 0;; ++attempt) {
          ASSERT_LT(attempt, 10'000);
          auto loaded = load(s, hot);
          ASSERT_TRUE(loaded);
          doc_history current{hot, *oplog::replay(loaded->base, loaded->ops)};
          commit_request request =
              current.next(ot::op{C::insert("t" + std::to_string(t))}, k % 3 == 0, 0, "hot-" + std::to_string(t));
          request.op.seq = static_cast<std::uint64_t>(k + 1);
          const std::error_code e = commit(s, request);
          if (!e) break;
          ASSERT_EQ(e, errc::version_conflict);
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();

  for (const auto& mine : histories) {
    for (const auto& doc : mine) {
      EXPECT_EQ(*load_ops(s, doc.key, 0), doc.log);
      auto loaded = load(s, doc.key);
      ASSERT_TRUE(loaded);
      EXPECT_EQ(*oplog::replay(loaded->base, loaded->ops), doc.head);
    }
  }
  auto hot_ops = load_ops(s, hot, 0);
  ASSERT_TRUE(hot_ops);
  ASSERT_EQ(hot_ops->size(), 1U + threads * hot_ops_per_thread);
  std::set<std::pair<std::string, std::uint64_t>> seen;
  for (std::size_t v = 0; v < hot_ops->size(); ++v) {
    EXPECT_EQ((*hot_ops)[v].version, v);
    if (v > 0) {
      EXPECT_TRUE(seen.emplace((*hot_ops)[v].src, (*hot_ops)[v].seq).second) << "duplicate at " << v;
    }
  }
  EXPECT_EQ(list_documents(s, "c")->size(), 1U + threads * docs_per_thread);
}

TYPED_TEST_P(StoreConformance, EveryHandlerIsCalledExactlyOnce) {
  store& s = this->s();
  constexpr std::size_t rounds = 20;
  std::vector<std::atomic<int>> calls(rounds * 6);
  std::atomic<int> total{0};
  auto count = [&](std::size_t i) {
    calls[i].fetch_add(1);
    total.fetch_add(1);
  };
  doc_history doc{{"c", "once"}};
  for (std::size_t r = 0; r < rounds; ++r) {
    if (r == rounds / 2) s.close();  // the later half get `closed`, still exactly once
    commit_request request =
        r == 0 ? doc.next(oplog::create_body{text_type, ""}) : doc.next(ot::op{C::insert("x")}, r % 4 == 0);
    doc.accept(request);
    s.commit(request, [&, i = r * 6](std::error_code) { count(i); });
    s.commit(request, [&, i = r * 6 + 1](std::error_code) { count(i); });  // a conflict
    s.load(doc.key, std::nullopt, [&, i = r * 6 + 2](auto) { count(i); });
    s.load_ops(doc.key, 0, std::nullopt, [&, i = r * 6 + 3](auto) { count(i); });
    s.version_at(doc.key, 0, [&, i = r * 6 + 4](auto) { count(i); });
    s.list_documents("c", "", 10, [&, i = r * 6 + 5](auto) { count(i); });
  }
  s.close();  // drains: every handler has run when it returns
  EXPECT_EQ(total.load(), static_cast<int>(rounds * 6));
  for (std::size_t i = 0; i < calls.size(); ++i) EXPECT_EQ(calls[i].load(), 1) << "call " << i;
}

TYPED_TEST_P(StoreConformance, CloseFinishesQueuedWorkThenRefusesEverything) {
  store& s = this->s();
  doc_history doc{{"c", "closing"}};
  std::vector<std::future<std::error_code>> pending;
  for (int i = 0; i < 50; ++i) {
    commit_request request = i == 0 ? doc.next(oplog::create_body{text_type, ""}) : doc.next(ot::op{C::insert("x")});
    auto promise = std::make_shared<std::promise<std::error_code>>();
    pending.push_back(promise->get_future());
    s.commit(request, [promise](std::error_code e) { promise->set_value(e); });
    doc.accept(request);
  }
  s.close();
  for (auto& f : pending) EXPECT_EQ(f.get(), std::error_code{});

  EXPECT_EQ(load(s, doc.key).error(), errc::closed);
  EXPECT_EQ(load_ops(s, doc.key, 0).error(), errc::closed);
  EXPECT_EQ(version_at(s, doc.key, 0).error(), errc::closed);
  EXPECT_EQ(list_documents(s, "c").error(), errc::closed);
  EXPECT_EQ(commit(s, doc.next(ot::op{C::insert("late")})), errc::closed);
  s.close();  // idempotent
  EXPECT_EQ(load(s, doc.key).error(), errc::closed);
}

REGISTER_TYPED_TEST_SUITE_P(StoreConformance, NeverWrittenDocumentLoadsAsVersionZeroUntyped,
                            LoadsEveryVersionOfAHistory, LoadStartsFromTheGreatestStoredSnapshotAtOrBelow,
                            OpRecordsRoundTripExactly, CompareAndSetConflictWritesNothing, CommitAllIsAllOrNothing,
                            MalformedRequestsAreInvalidArguments, LoadOpsReturnsTheAskedRange,
                            VersionAtCountsOpsAtOrBeforeTheTimestamp, ListDocumentsInIdOrderWithPaging,
                            ConcurrentCommitsFromSeveralThreadsLoseNothing, EveryHandlerIsCalledExactlyOnce,
                            CloseFinishesQueuedWorkThenRefusesEverything);

}  // namespace otsync::store::test
