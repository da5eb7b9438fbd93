// The submit pipeline's state machine on its own: no Asio, no store. Each
// test plays the actor: it offers submissions, seals the batch, and completes
// it with the outcomes a store would report (success, a lost compare-and-set
// race, a lost reply), then checks the answers, the broadcasts, what is
// retried, and the head the pipeline is left with.
#include "doc/submit_pipeline.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "otsync/oplog/snapshot.hpp"
#include "otsync/ot/text_unicode.hpp"

namespace otsync::doc {
namespace {

using C = ot::component;
using kind = submit_pipeline::offer_kind;

const std::string text_type(ot::type_uri);

submit_entry entry(std::string src, std::uint64_t seq, std::optional<std::uint64_t> version, oplog::op_body body,
                   unsigned attempts = 0) {
  return submit_entry{submission{std::move(src), seq, version, std::move(body)}, {}, {}, attempts, {}};
}

std::error_code ok() {
  return {};
}
std::error_code lost_race() {
  return make_error_code(store::errc::version_conflict);
}
std::error_code lost_reply() {
  return make_error_code(store::errc::unavailable);
}

class SubmitPipelineTest : public ::testing::Test {
 protected:
  SubmitPipelineTest() : pipeline(key, options) {}

  // Loads a document with `text` at version 1 (created by "origin", seq 1), or a missing one.
  void load_text(std::optional<std::string> text) {
    store::loaded_document loaded;
    if (text) loaded.ops.push_back(op_record{"origin", 1, 0, oplog::create_body{text_type, *text}, 0});
    ASSERT_FALSE(pipeline.load(std::move(loaded)));
  }

  // One batch: offers every entry (they must all be taken or answered), seals, completes.
  submit_pipeline::completion run(std::vector<submit_entry> entries, bool shared,
                                  const std::vector<std::error_code>& outcomes, bool atomic = true) {
    pipeline.begin_batch(shared, atomic);
    answered.clear();
    for (auto& e : entries) {
      auto offered = pipeline.offer(e);
      EXPECT_NE(offered.kind, kind::full);
      EXPECT_NE(offered.kind, kind::needs_history);
      EXPECT_NE(offered.kind, kind::needs_catch_up);
      if (offered.kind == kind::answered) answered.push_back(*offered.error);
    }
    plan = pipeline.seal();
    return pipeline.complete(outcomes);
  }

  std::string text() const { return pipeline.head_snapshot().data; }

  store::doc_key key{"docs", "d1"};
  document_options options;
  submit_pipeline pipeline;
  submit_pipeline::commit_plan plan;
  std::vector<protocol::error_info> answered;
};

TEST_F(SubmitPipelineTest, CommittedOpsAreAckedThenBroadcastInOrder) {
  load_text(std::nullopt);
  std::vector<submit_entry> batch;
  batch.push_back(entry("a", 1, 0, oplog::create_body{text_type, "abc"}));
  batch.push_back(entry("a", 2, 1, ot::op{C::skip(3), C::insert("!")}));
  auto done = run(std::move(batch), false, {ok(), ok()});
  ASSERT_EQ(plan.requests.size(), 2u);
  EXPECT_FALSE(plan.all_or_nothing);
  EXPECT_EQ(plan.requests[0].after.version, 1u);
  EXPECT_EQ(plan.requests[1].after.version, 2u);
  EXPECT_EQ(plan.requests[1].after.type_uri, text_type);
  ASSERT_EQ(done.answers.size(), 2u);
  EXPECT_EQ(done.committed, 2u);
  EXPECT_EQ(done.next, submit_pipeline::next_step::carry_on);
  for (std::uint64_t i = 0; i < 2; ++i) {
    const auto& a = done.answers[i];
    EXPECT_FALSE(a.result.error);
    EXPECT_EQ(a.result.version, i);
    ASSERT_TRUE(a.broadcast);
    EXPECT_EQ(a.broadcast->record.version, i);
    EXPECT_NE(a.broadcast->frame->find("\"v\":" + std::to_string(i)), std::string::npos);
  }
  EXPECT_EQ(text(), "abc!");
  EXPECT_EQ(pipeline.head_version(), 2u);
  EXPECT_EQ(pipeline.cached_frames(0).size(), 2u);
}

// Stores answer `nt` by binary search on the time: an op never takes a timestamp before the op
// under it when the clock is behind the log (stepped back, or another instance's clock), whether
// the op under it was loaded or only named by the store (a snapshot at the head); but a log more
// than max_timestamp_lead_ms ahead (a clock once set wrong) does not hold every later op's time.
TEST_F(SubmitPipelineTest, TimestampsDoNotGoBackWithinADocument) {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::int64_t ahead = now + 60'000;  // a minute ahead of this clock
  auto next_time = [&](store::loaded_document loaded) {
    submit_pipeline p(key, options);
    EXPECT_FALSE(p.load(std::move(loaded)));
    p.begin_batch(false, true);
    auto e = entry("a", 1, p.head_version(), ot::op{C::insert("q")});
    EXPECT_EQ(p.offer(e).kind, kind::batched);
    auto sealed = p.seal();
    EXPECT_EQ(sealed.requests.size(), 1u);
    p.complete({ok()});
    return sealed.requests.empty() ? std::int64_t{-1} : sealed.requests[0].op.timestamp_ms;
  };
  store::loaded_document loaded;
  loaded.ops.push_back(op_record{"origin", 1, 0, oplog::create_body{text_type, "ab"}, ahead - 5});
  loaded.ops.push_back(op_record{"origin", 2, 1, ot::op{C::insert("x")}, ahead});
  EXPECT_EQ(next_time(loaded), ahead);

  store::loaded_document at_head;  // a snapshot at the head, the op under it named by the store
  at_head.base = {2, text_type, "xab", oplog::create_record{"origin", 1, 0}};
  at_head.base_timestamp_ms = ahead;
  EXPECT_EQ(next_time(at_head), ahead);

  store::loaded_document behind;  // a clock ahead of the log is used as it is
  behind.ops.push_back(op_record{"origin", 1, 0, oplog::create_body{text_type, ""}, 1000});
  EXPECT_GE(next_time(behind), now);

  store::loaded_document far;  // a day ahead: the clock is trusted again
  far.base = {1, text_type, "", oplog::create_record{"origin", 1, 0}};
  far.base_timestamp_ms = now + 86'400'000;
  const auto time = next_time(far);
  EXPECT_GE(time, now);
  EXPECT_LT(time, now + 86'400'000);

  // Within one pipeline: the batch's ops follow the loaded floor.
  ASSERT_FALSE(pipeline.load(std::move(loaded)));
  std::vector<submit_entry> batch;
  batch.push_back(entry("a", 1, 2, ot::op{C::insert("y")}));
  batch.push_back(entry("a", 2, 3, ot::op{C::insert("z")}));
  run(std::move(batch), false, {ok(), ok()});
  ASSERT_EQ(plan.requests.size(), 2u);
  EXPECT_EQ(plan.requests[0].op.timestamp_ms, ahead);
  EXPECT_EQ(plan.requests[1].op.timestamp_ms, ahead);
}

// The alias in each frame is a keyed hash of its author's id: computed once per author while the
// document has few, and still right (with a bounded list) when it has many.
TEST_F(SubmitPipelineTest, EachAuthorsAliasIsComputedOncePerDocument) {
  int computed = 0;
  options.public_src = [&computed](std::string_view src) {
    ++computed;
    return "~" + std::string(src);
  };
  load_text("");
  // Authors `first` to `first + authors - 1` type one letter each, `rounds` times (a batch per round).
  auto type = [&](std::size_t first, std::size_t authors, std::uint64_t rounds) {
    std::uint64_t version = pipeline.head_version();
    for (std::uint64_t round = 0; round < rounds; ++round) {
      std::vector<submit_entry> batch;
      for (std::size_t a = first; a < first + authors; ++a) {
        batch.push_back(entry("author" + std::to_string(a), 1 + round, version++, ot::op{C::insert("x")}));
      }
      auto done = run(std::move(batch), false, std::vector<std::error_code>(authors, ok()));
      ASSERT_EQ(done.answers.size(), authors);
      for (std::size_t a = 0; a < authors; ++a) {
        ASSERT_TRUE(done.answers[a].broadcast);
        const auto& frame = *done.answers[a].broadcast->frame;
        EXPECT_NE(frame.find("\"src\":\"~author" + std::to_string(first + a) + "\""), std::string::npos) << frame;
      }
    }
  };
  ASSERT_NO_FATAL_FAILURE(type(0, 3, 5));
  EXPECT_EQ(computed, 4);  // "origin", who created the document, and the three
  for (std::size_t first : {100U, 300U, 500U}) ASSERT_NO_FATAL_FAILURE(type(first, 200, 1));
  EXPECT_EQ(computed, 604);
  // What the footprint counts beyond the text and the cached ops (as record and frame): the aliases
  // kept, within their bound, not one per author seen.
  std::size_t cached = 0;
  for (const auto& frame : pipeline.cached_frames(pipeline.recent_base())) cached += frame->size();
  const auto aliases = pipeline.footprint() - text().size() - 2 * cached;
  EXPECT_GT(aliases, 0U);
  EXPECT_LE(aliases, 256U * 200U);
}

TEST_F(SubmitPipelineTest, ConcurrentOpIsTransformedAndGetsTheOpsItMissed) {
  load_text("abc");
  ASSERT_EQ(run({entry("a", 1, 1, ot::op{C::insert("X")})}, false, {ok()}).answers.size(), 1u);
  // "b" made its op at version 1, before "a"'s insert: it is moved past it.
  auto done = run({entry("b", 1, 1, ot::op{C::skip(3), C::insert("!")})}, false, {ok()});
  ASSERT_EQ(done.answers.size(), 1u);
  const auto& r = done.answers[0].result;
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.version, 2u);
  ASSERT_EQ(r.missed.size(), 1u);
  EXPECT_NE(r.missed[0]->find("\"src\":\"a\""), std::string::npos);
  EXPECT_EQ(text(), "Xabc!");
}

TEST_F(SubmitPipelineTest, LostRaceOnASharedStoreIsUndoneAndRetriedAfterAResync) {
  load_text("abc");
  auto done =
      run({entry("a", 1, 1, ot::op{C::insert("X")}), entry("a", 2, 1, oplog::delete_body{})}, true, {lost_race()});
  EXPECT_TRUE(plan.all_or_nothing);
  EXPECT_TRUE(done.answers.empty());  // nothing acknowledged
  ASSERT_EQ(done.retries.size(), 2u);
  EXPECT_EQ(done.retries[0].attempts, 1u);
  EXPECT_EQ(done.retries[1].original.seq, 2u);
  EXPECT_EQ(done.next, submit_pipeline::next_step::resync);
  // Back to the committed head: the insert undone by its inverse, the delete by the text it replaced.
  EXPECT_EQ(pipeline.head_version(), 1u);
  EXPECT_EQ(text(), "abc");
  EXPECT_TRUE(pipeline.exists());
  EXPECT_EQ(pipeline.cached_frames(0).size(), 1u);
}

TEST_F(SubmitPipelineTest, LostRaceOnASingleInstanceStoreReloads) {
  load_text("abc");
  auto done = run({entry("a", 1, 1, ot::op{C::insert("X")})}, false, {lost_race()});
  ASSERT_EQ(done.retries.size(), 1u);
  EXPECT_EQ(done.next, submit_pipeline::next_step::reload);
}

TEST_F(SubmitPipelineTest, LostReplyOnASharedStoreIsRetriedAndTheResendIsAcked) {
  load_text("abc");
  // The store committed the op but its reply was lost: the pipeline retries after a resync.
  auto done = run({entry("a", 5, 1, ot::op{C::insert("X")})}, true, {lost_reply()});
  ASSERT_EQ(done.retries.size(), 1u);
  EXPECT_EQ(done.next, submit_pipeline::next_step::resync);
  // The resync brings the op the store did commit.
  auto remote = pipeline.apply_remote({op_record{"a", 5, 1, ot::op{C::insert("X")}, 0}});
  ASSERT_FALSE(remote.diverged);
  EXPECT_EQ(remote.applied.size(), 1u);
  // The retry is recognised as a resend (same src and seq): acked at its version, nothing committed twice.
  auto retried = run(std::move(done.retries), true, {});
  EXPECT_TRUE(plan.requests.empty());
  ASSERT_EQ(retried.answers.size(), 1u);
  EXPECT_FALSE(retried.answers[0].result.error);
  EXPECT_EQ(retried.answers[0].result.version, 1u);
  EXPECT_FALSE(retried.answers[0].broadcast);
  EXPECT_EQ(text(), "Xabc");
}

TEST_F(SubmitPipelineTest, StoreFailureOnASingleInstanceIsReportedNotRetried) {
  load_text("abc");
  auto done = run({entry("a", 1, 1, ot::op{C::insert("X")})}, false, {lost_reply()});
  ASSERT_EQ(done.answers.size(), 1u);
  ASSERT_TRUE(done.answers[0].result.error);
  EXPECT_EQ(done.answers[0].result.error->code, "ERR_DATABASE_UNAVAILABLE");
  EXPECT_TRUE(done.retries.empty());
  EXPECT_EQ(done.next, submit_pipeline::next_step::reload);
}

TEST_F(SubmitPipelineTest, OpsAfterAFailedCommitInAPipelinedBatchAreRetriedNotAcked) {
  load_text("abc");
  auto done = run({entry("a", 1, 1, ot::op{C::insert("X")}), entry("a", 2, 2, ot::op{C::insert("Y")})}, false,
                  {ok(), lost_race()});
  ASSERT_EQ(done.answers.size(), 1u);
  EXPECT_EQ(done.answers[0].result.seq, 1u);
  ASSERT_EQ(done.retries.size(), 1u);
  EXPECT_EQ(done.retries[0].original.seq, 2u);
}

TEST_F(SubmitPipelineTest, RetryLimitEndsInMaxSubmitRetriesExceeded) {
  options.max_submit_retries = 3;
  load_text("abc");
  auto done = run({entry("a", 1, 1, ot::op{C::insert("X")}, 2)}, true, {lost_race()});
  EXPECT_TRUE(done.retries.empty());
  ASSERT_EQ(done.answers.size(), 1u);
  ASSERT_TRUE(done.answers[0].result.error);
  EXPECT_EQ(done.answers[0].result.error->code, "ERR_MAX_SUBMIT_RETRIES_EXCEEDED");
  EXPECT_EQ(done.answers[0].result.error->message, "Maximum submit retries exceeded");
}

TEST_F(SubmitPipelineTest, ResendOfACommittedOpIsAckedAtItsOriginalVersionWithWhatItMissed) {
  load_text("abc");
  run({entry("a", 1, 1, ot::op{C::insert("X")})}, false, {ok()});
  run({entry("b", 1, 2, ot::op{C::insert("Y")})}, false, {ok()});
  // "a" reconnects and resends seq 1, made at version 1.
  auto done = run({entry("a", 1, 1, ot::op{C::insert("X")})}, false, {});
  EXPECT_TRUE(plan.requests.empty());
  EXPECT_FALSE(plan.empty);
  ASSERT_EQ(done.answers.size(), 1u);
  EXPECT_EQ(done.answers[0].result.version, 1u);
  EXPECT_TRUE(done.answers[0].result.missed.empty());
  EXPECT_EQ(text(), "YXabc");
}

TEST_F(SubmitPipelineTest, ResendOfAnOpOfTheSameBatchIsAckedOnlyIfThatOpCommitted) {
  // A client reconnects and resends its op while the old connection's copy is still queued: both
  // land in one batch, the resend recognised against the first's tentative commit.
  load_text("abc");
  auto failed =
      run({entry("a", 1, 1, ot::op{C::insert("X")}), entry("a", 1, 1, ot::op{C::insert("X")})}, false, {lost_reply()});
  // The commit failed: the original gets the error, the resend is not acked (that would be an ack of
  // an op that is nowhere) but retried.
  ASSERT_EQ(failed.answers.size(), 1u);
  ASSERT_TRUE(failed.answers[0].result.error);
  ASSERT_EQ(failed.retries.size(), 1u);
  ASSERT_FALSE(pipeline.load({{}, {op_record{"origin", 1, 0, oplog::create_body{text_type, "abc"}, 0}}}));
  auto retried = run(std::move(failed.retries), false, {ok()});
  ASSERT_EQ(retried.answers.size(), 1u);
  EXPECT_FALSE(retried.answers[0].result.error);
  EXPECT_EQ(retried.answers[0].result.version, 1u);
  EXPECT_TRUE(retried.answers[0].broadcast);  // committed now, once
  EXPECT_EQ(text(), "Xabc");
  // When the commit succeeds, both are acked at the same version.
  auto both = run({entry("b", 1, 2, ot::op{C::insert("Y")}), entry("b", 1, 2, ot::op{C::insert("Y")})}, false, {ok()});
  ASSERT_EQ(both.answers.size(), 2u);
  EXPECT_EQ(both.answers[0].result.version, 2u);
  EXPECT_EQ(both.answers[1].result.version, 2u);
  EXPECT_FALSE(both.answers[1].broadcast);
  EXPECT_EQ(text(), "YXabc");
}

TEST_F(SubmitPipelineTest, CreateRacesFollowShareDB) {
  load_text(std::nullopt);
  // Two clients create the document at version 0: the second loses.
  auto done = run({entry("a", 1, 0, oplog::create_body{text_type, "first"}),
                   entry("b", 1, 0, oplog::create_body{text_type, "second"})},
                  false, {ok()});
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].code, "ERR_DOC_ALREADY_CREATED");
  ASSERT_EQ(done.answers.size(), 1u);
  EXPECT_EQ(text(), "first");
  // A create sent without a version (never fetched) by its creator is a resend; by anyone else, an error.
  auto resent = run({entry("a", 1, std::nullopt, oplog::create_body{text_type, "first"}),
                     entry("c", 1, std::nullopt, oplog::create_body{text_type, "third"})},
                    false, {});
  ASSERT_EQ(resent.answers.size(), 1u);
  EXPECT_EQ(resent.answers[0].result.version, 0u);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].code, "ERR_DOC_ALREADY_CREATED");
  EXPECT_EQ(answered[0].message, "Document already exists");
}

TEST_F(SubmitPipelineTest, EditMadeBeforeADeleteIsRefused) {
  load_text("abc");
  run({entry("a", 1, 1, oplog::delete_body{})}, false, {ok()});
  EXPECT_FALSE(pipeline.exists());
  run({entry("b", 1, 1, ot::op{C::insert("X")}), entry("c", 1, 2, ot::op{C::insert("Y")})}, false, {});
  ASSERT_EQ(answered.size(), 2u);
  EXPECT_EQ(answered[0].code, "ERR_DOC_WAS_DELETED");
  EXPECT_EQ(answered[1].code, "ERR_DOC_DOES_NOT_EXIST");
  EXPECT_TRUE(plan.empty);
}

TEST_F(SubmitPipelineTest, OpOlderThanTheCacheAsksForHistoryFirst) {
  options.recent_ops = 2;
  load_text("");
  for (std::uint64_t v = 1; v < 5; ++v) run({entry("a", v, v, ot::op{C::insert("x")})}, false, {ok()});
  ASSERT_EQ(pipeline.recent_base(), 3u);
  auto old = entry("b", 1, 1, ot::op{C::insert("B")});
  pipeline.begin_batch(false, true);
  auto offered = pipeline.offer(old);
  ASSERT_EQ(offered.kind, kind::needs_history);
  EXPECT_EQ(offered.history_from, 1u);
  EXPECT_EQ(offered.history_until, 3u);
  // A short history is an error, never a silent skip.
  std::vector<op_record> short_history{op_record{"a", 1, 1, ot::op{C::insert("x")}, 0}};
  auto error = pipeline.accept_history(old, short_history);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND");
  std::vector<op_record> history{op_record{"a", 1, 1, ot::op{C::insert("x")}, 0},
                                 op_record{"a", 2, 2, ot::op{C::insert("x")}, 0}};
  ASSERT_FALSE(pipeline.accept_history(old, history));
  ASSERT_EQ(pipeline.offer(old).kind, kind::batched);
  plan = pipeline.seal();
  auto done = pipeline.complete({ok()});
  ASSERT_EQ(done.answers.size(), 1u);
  EXPECT_EQ(done.answers[0].result.version, 5u);
  EXPECT_EQ(done.answers[0].result.missed.size(), 4u);  // two read from the store, two from the cache
}

// A client that saw a version on another instance may submit here before this
// copy heard of it: on a shared store the head first catches up from the log.
TEST_F(SubmitPipelineTest, OpAheadOfTheHeadOnASharedStoreCatchesUpFirstOnce) {
  load_text("abc");
  auto ahead = entry("b", 1, 2, ot::op{C::insert("B")});
  pipeline.begin_batch(true, true);
  auto offered = pipeline.offer(ahead);
  ASSERT_EQ(offered.kind, kind::needs_catch_up);
  EXPECT_EQ(offered.history_from, 1u);
  EXPECT_EQ(offered.history_until, 2u);
  ASSERT_FALSE(pipeline.apply_remote({op_record{"x", 1, 1, ot::op{C::insert("R")}, 0}}).diverged);
  pipeline.begin_batch(true, true);
  ASSERT_EQ(pipeline.offer(ahead).kind, kind::batched);
  plan = pipeline.seal();
  auto done = pipeline.complete({ok()});
  ASSERT_EQ(done.answers.size(), 1u);
  EXPECT_EQ(done.answers[0].result.version, 2u);
  EXPECT_EQ(text(), "BRabc");
  // Still ahead after catching up (no such version anywhere): refused, not asked again.
  auto future = entry("b", 2, 9, ot::op{C::insert("?")});
  pipeline.begin_batch(true, true);
  ASSERT_EQ(pipeline.offer(future).kind, kind::needs_catch_up);
  pipeline.begin_batch(true, true);
  offered = pipeline.offer(future);
  ASSERT_EQ(offered.kind, kind::answered);
  EXPECT_EQ(offered.error->message, "Op version newer than current snapshot");
  // A single instance owns the head: no catch-up.
  auto single = entry("c", 1, 9, ot::op{C::insert("?")});
  pipeline.begin_batch(false, true);
  EXPECT_EQ(pipeline.offer(single).kind, kind::answered);
}

TEST_F(SubmitPipelineTest, PresenceMovesThroughTheCachedOpsToTheHead) {
  load_text("abc");
  run({entry("me", 1, 1, ot::op{C::skip(1), C::insert("XY")})}, false, {ok()});  // "aXYbc", v2
  run({entry("you", 1, 2, ot::op{C::erase(1)})}, false, {ok()});                 // "XYbc", v3
  // A caret at 1 as of v1: my insert there carries it (3), your delete before it pulls it back (2).
  auto mine = pipeline.transform_presence(1, "me", ot::selection{1, 1});
  ASSERT_FALSE(mine.error);
  EXPECT_EQ(mine.version, 3u);
  EXPECT_EQ(mine.range, (ot::selection{2, 2}));
  EXPECT_FALSE(mine.cleared);
  // Someone else's caret at the same place stays before my insert.
  EXPECT_EQ(pipeline.transform_presence(1, "other", ot::selection{1, 1}).range, (ot::selection{0, 0}));
  // A backwards selection from 3 over 2 ("Xa" side): both ends move.
  EXPECT_EQ(pipeline.transform_presence(1, "other", ot::selection{3, 1}).range, (ot::selection{4, 0}));
  // At the head, or ahead of it (another instance knows more): as sent.
  EXPECT_EQ(pipeline.transform_presence(3, "me", ot::selection{1, 2}).range, (ot::selection{1, 2}));
  EXPECT_EQ(pipeline.transform_presence(9, "me", ot::selection{1, 2}).version, 9u);
  // No range (null or opaque value): only the version moves.
  auto opaque = pipeline.transform_presence(1, "me", std::nullopt);
  EXPECT_EQ(opaque.version, 3u);
  EXPECT_FALSE(opaque.range);
  // Older than the cache: an error, not a guess.
  options.recent_ops = 1;
  run({entry("me", 2, 3, ot::op{C::insert("!")})}, false, {ok()});
  EXPECT_TRUE(pipeline.transform_presence(1, "me", ot::selection{0, 0}).error);
  // ... but a removal (nothing to move) still goes out at the head, or receivers would keep a ghost.
  auto removal = pipeline.transform_presence(1, "me", std::nullopt);
  EXPECT_FALSE(removal.error);
  EXPECT_EQ(removal.version, 4u);
  // A delete clears presence from before it.
  run({entry("me", 3, 4, oplog::delete_body{})}, false, {ok()});
  auto gone = pipeline.transform_presence(4, "me", ot::selection{0, 0});
  EXPECT_TRUE(gone.cleared);
  EXPECT_FALSE(gone.range);
  EXPECT_EQ(gone.version, 5u);
}

TEST_F(SubmitPipelineTest, BatchesAreBoundedAndOneOpAtATimeWithoutAtomicBatches) {
  options.max_batch = 2;
  load_text("abc");
  auto a = entry("a", 1, 1, ot::op{C::insert("1")});
  auto b = entry("a", 2, 2, ot::op{C::insert("2")});
  auto c = entry("a", 3, 3, ot::op{C::insert("3")});
  pipeline.begin_batch(false, true);
  EXPECT_EQ(pipeline.offer(a).kind, kind::batched);
  EXPECT_EQ(pipeline.offer(b).kind, kind::batched);
  EXPECT_EQ(pipeline.offer(c).kind, kind::full);
  EXPECT_EQ(pipeline.seal().requests.size(), 2u);
  pipeline.complete({ok(), ok()});
  // A shared store that cannot commit a batch atomically takes one op at a time.
  pipeline.begin_batch(true, false);
  EXPECT_EQ(pipeline.offer(c).kind, kind::batched);
  auto d = entry("a", 4, 4, ot::op{C::insert("4")});
  EXPECT_EQ(pipeline.offer(d).kind, kind::full);
}

TEST_F(SubmitPipelineTest, SnapshotIsStoredEverySnapshotIntervalOps) {
  options.snapshot_interval = 3;
  load_text("");
  int snapshots = 0;
  for (std::uint64_t v = 1; v <= 6; ++v) {
    run({entry("a", v, v, ot::op{C::insert("x")})}, false, {ok()});
    ASSERT_EQ(plan.requests.size(), 1u);
    if (plan.requests[0].store_snapshot) {
      ++snapshots;
      EXPECT_EQ(plan.requests[0].after.data, std::string(v, 'x'));
    }
  }
  EXPECT_EQ(snapshots, 2);
}

TEST_F(SubmitPipelineTest, EditsGrowingTheDocumentPastTheLimitAreRefused) {
  options.max_document_bytes = 5;
  load_text("abc");
  run({entry("a", 1, 1, ot::op{C::insert("toolong")})}, false, {});
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].code, "ERR_OT_OP_NOT_APPLIED");
  EXPECT_EQ(answered[0].message, "Document would exceed the size limit");
  EXPECT_EQ(text(), "abc");
}

TEST_F(SubmitPipelineTest, RemoteOpsApplyInOrderAndAGapOrConflictDiverges) {
  load_text("abc");
  auto applied = pipeline.apply_remote({op_record{"x", 1, 0, oplog::create_body{text_type, "old"}, 0},  // had it
                                        op_record{"x", 2, 1, ot::op{C::insert("R")}, 0}});
  EXPECT_FALSE(applied.diverged);
  ASSERT_EQ(applied.applied.size(), 1u);
  EXPECT_EQ(text(), "Rabc");
  EXPECT_TRUE(pipeline.apply_remote({op_record{"x", 3, 5, ot::op{C::insert("?")}, 0}}).diverged);
}

TEST_F(SubmitPipelineTest, StoredOpThatDoesNotApplyIsReportedAsCorrupt) {
  store::loaded_document loaded;
  loaded.ops.push_back(op_record{"a", 1, 0, ot::op{C::insert("x")}, 0});  // an edit of a missing document
  auto error = pipeline.load(std::move(loaded));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "ERR_DATABASE_CORRUPT");
  EXPECT_EQ(error->message, "Stored op 0 of docs/d1 does not apply: Document does not exist");
}

}  // namespace
}  // namespace otsync::doc

// ---- A property: random submissions, races and lost replies against a model store ----------------
namespace otsync::doc {
namespace {

// The store as the pipeline's commits see it: one op log with compare-and-set.
struct model_store {
  std::vector<op_record> log;
  std::error_code commit(const store::commit_request& request) {
    if (request.op.version != log.size()) return lost_race();
    log.push_back(request.op);
    return {};
  }
  [[nodiscard]] std::string text_at(std::uint64_t version) const {
    auto snap = oplog::replay({}, std::span<const op_record>(log.data(), version));
    return snap ? snap->data : std::string{};
  }
};

// An edit of `text` (ASCII): an insert or a delete at a random place.
ot::op random_edit(std::mt19937& rng, std::size_t length) {
  const std::size_t at = rng() % (length + 1);
  ot::op_builder out(3);
  if (at > 0) out.append(C::skip(at).view());
  if (at < length && rng() % 3 == 0) {
    out.erase(std::min<std::uint64_t>(1 + rng() % 3, length - at));
  } else {
    out.append(C::insert(std::string(1, static_cast<char>('a' + rng() % 26))).view());
  }
  return std::move(out).finish();
}

void run_random_history(unsigned seed, bool shared) {
  SCOPED_TRACE("seed " + std::to_string(seed) + (shared ? " shared" : " single"));
  std::mt19937 rng(seed);
  document_options options;
  options.max_batch = 4;
  options.recent_ops = 6;  // short: old submissions need history from the store
  options.max_submit_retries = 1000;
  submit_pipeline pipeline({"docs", "p"}, options);
  model_store storage;
  ASSERT_TRUE(
      storage.commit({{"docs", "p"}, op_record{"seed", 1, 0, oplog::create_body{text_type, "hello"}, 0}, {}, false})
          .value() == 0);
  ASSERT_FALSE(pipeline.load({{}, storage.log}));

  std::deque<submit_entry> queue;
  std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> acked;  // (src, seq) -> version
  std::vector<submit_entry> sent;                                        // for resends
  std::uint64_t next_seq[3] = {1, 1, 1};
  int foreign = 0;
  for (int round = 0; round < 120; ++round) {
    // New submissions made at random past versions, and now and then a resend of an earlier one.
    for (int n = static_cast<int>(rng() % 3); n > 0; --n) {
      if (!sent.empty() && rng() % 6 == 0) {
        const auto& old = sent[rng() % sent.size()];
        queue.push_back(entry(old.original.src, old.original.seq, old.original.version, old.original.body));
        continue;
      }
      const auto client = static_cast<std::size_t>(rng() % 3);
      const std::uint64_t base = 1 + rng() % storage.log.size();
      auto body = random_edit(rng, storage.text_at(base).size());
      queue.push_back(entry("c" + std::to_string(client), next_seq[client]++, base, body));
      sent.push_back(entry(queue.back().original.src, queue.back().original.seq, base, body));
    }
    // One batch.
    pipeline.begin_batch(shared, true);
    while (!queue.empty()) {
      auto offered = pipeline.offer(queue.front());
      if (offered.kind == kind::full) break;
      if (offered.kind == kind::needs_history) {
        std::vector<op_record> history(storage.log.begin() + static_cast<std::ptrdiff_t>(offered.history_from),
                                       storage.log.begin() + static_cast<std::ptrdiff_t>(offered.history_until));
        ASSERT_FALSE(pipeline.accept_history(queue.front(), std::move(history)));
        offered = pipeline.offer(queue.front());
        ASSERT_NE(offered.kind, kind::needs_history);
        if (offered.kind == kind::full) break;
      }
      ASSERT_NE(offered.kind, kind::answered) << offered.error->code << " " << offered.error->message;
      queue.pop_front();
    }
    auto plan = pipeline.seal();
    if (plan.empty) continue;
    // Another instance sometimes commits first (shared only); a reply is sometimes lost.
    if (shared && !plan.requests.empty() && rng() % 4 == 0) {
      auto edit = random_edit(rng, storage.text_at(storage.log.size()).size());
      ASSERT_FALSE(
          storage.commit({{"docs", "p"},
                          op_record{"other", static_cast<std::uint64_t>(++foreign), storage.log.size(), edit, 0},
                          {},
                          false}));
    }
    std::vector<std::error_code> outcomes;
    if (plan.all_or_nothing) {
      const auto before = storage.log.size();
      std::error_code ec;
      for (const auto& request : plan.requests) {
        if ((ec = storage.commit(request))) break;
      }
      if (ec) storage.log.resize(before);  // all or nothing
      if (!ec && rng() % 5 == 0) ec = lost_reply();
      outcomes.push_back(ec);
    } else {
      for (const auto& request : plan.requests) {
        auto ec = storage.commit(request);
        if (!ec && shared && rng() % 5 == 0) ec = lost_reply();
        outcomes.push_back(ec);
      }
    }
    auto done = pipeline.complete(outcomes);
    for (auto& a : done.answers) {
      ASSERT_FALSE(a.result.error) << a.result.error->code << " " << a.result.error->message;
      auto key = std::make_pair(a.result.src, a.result.seq);
      if (auto it = acked.find(key); it != acked.end()) {
        EXPECT_EQ(it->second, a.result.version) << "a resend acked at another version";
      }
      acked[key] = a.result.version;
    }
    for (auto it = done.retries.rbegin(); it != done.retries.rend(); ++it) queue.push_front(std::move(*it));
    if (done.next == submit_pipeline::next_step::resync) {
      std::vector<op_record> since(storage.log.begin() + static_cast<std::ptrdiff_t>(pipeline.head_version()),
                                   storage.log.end());
      ASSERT_FALSE(pipeline.apply_remote(std::move(since)).diverged);
    } else if (done.next == submit_pipeline::next_step::reload) {
      ASSERT_FALSE(pipeline.load({{}, storage.log}));
    } else if (shared && pipeline.head_version() < storage.log.size()) {
      // Ops other instances committed reach this one over the feed.
      std::vector<op_record> since(storage.log.begin() + static_cast<std::ptrdiff_t>(pipeline.head_version()),
                                   storage.log.end());
      ASSERT_FALSE(pipeline.apply_remote(std::move(since)).diverged);
    }
    ASSERT_EQ(pipeline.head_version(), storage.log.size());
    ASSERT_EQ(pipeline.head_snapshot().data, storage.text_at(storage.log.size()));
  }
  // Every acknowledged op is in the log exactly once, at the version it was acked at.
  std::map<std::pair<std::string, std::uint64_t>, int> in_log;
  for (const auto& op : storage.log) ++in_log[{op.src, op.seq}];
  for (const auto& [key, count] : in_log) EXPECT_EQ(count, 1) << key.first << " " << key.second;
  for (const auto& [key, version] : acked) {
    ASSERT_LT(version, storage.log.size());
    EXPECT_EQ(storage.log[version].src, key.first);
    EXPECT_EQ(storage.log[version].seq, key.second);
  }
}

TEST(SubmitPipelineProperty, RandomHistoriesAckEveryCommittedOpOnceAndMatchTheLog) {
  for (unsigned seed = 1; seed <= 40; ++seed) {
    run_random_history(seed, false);
    run_random_history(seed, true);
  }
}

}  // namespace
}  // namespace otsync::doc
