#include "otsync/client/ot_client.hpp"

#include <gtest/gtest.h>

#include "otsync/oplog/error.hpp"
#include "otsync/ot/error.hpp"

namespace otsync::client {
namespace {

using C = ot::component;

TEST(OtClient, LocalEditsApplyAtOnceAndWaitComposed) {
  ot_client doc("me", 3, "abc");
  ASSERT_FALSE(doc.submit({C::skip(3), C::insert("d")}));
  ASSERT_FALSE(doc.submit({C::skip(4), C::insert("e")}));
  EXPECT_EQ(doc.text().to_string(), "abcde");
  EXPECT_TRUE(doc.has_pending());
  std::uint64_t seq = 1;
  auto out = doc.flush(seq);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->seq, 1U);
  EXPECT_EQ(seq, 2U);
  EXPECT_EQ(out->version, 3U);
  EXPECT_FALSE(out->resend);
  EXPECT_EQ(out->op, (ot::op{C::skip(3), C::insert("de")}));
  EXPECT_FALSE(doc.flush(seq).has_value());  // one op in flight at a time
}

TEST(OtClient, RejectsAnEditThatDoesNotApply) {
  ot_client doc("me", 0, "ab");
  EXPECT_EQ(doc.submit({C::skip(5), C::insert("x")}), ot::errc::op_too_long);
  EXPECT_TRUE(doc.synchronised());
}

TEST(OtClient, RemoteOpsTransformPastInflightAndPending) {
  ot_client doc("me", 1, "abc");
  ASSERT_FALSE(doc.submit({C::insert("X")}));
  std::uint64_t seq = 1;
  ASSERT_TRUE(doc.flush(seq).has_value());
  ASSERT_FALSE(doc.submit({C::skip(4), C::insert("Y")}));
  EXPECT_EQ(doc.text().to_string(), "XabcY");
  // Another client inserted at 0 and deleted "b" concurrently.
  auto r = doc.receive({"other", 9, 1, ot::op{C::insert("R"), C::skip(1), C::erase(1)}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, receive_result::applied);
  EXPECT_EQ(doc.text().to_string(), "XRacY");  // our in-flight insert wins the tie (left)
  EXPECT_EQ(doc.version(), 2U);
  EXPECT_FALSE(doc.acknowledge(2));
  EXPECT_EQ(doc.version(), 3U);
  auto next = doc.flush(seq);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->version, 3U);
  EXPECT_EQ(next->op, (ot::op{C::skip(4), C::insert("Y")}));
}

TEST(OtClient, StreamOrderingRules) {
  ot_client doc("me", 5, "");
  EXPECT_EQ(*doc.receive({"o", 1, 4, ot::op{C::insert("old")}}), receive_result::duplicate);
  EXPECT_EQ(*doc.receive({"o", 1, 7, ot::op{C::insert("new")}}), receive_result::gap);
  EXPECT_EQ(doc.text().to_string(), "");
  EXPECT_EQ(doc.receive({"o", 1, 5, oplog::delete_body{}}).error(), oplog::errc::doc_was_deleted);
}

TEST(OtClient, OwnOpInTheStreamIsTheAck) {
  ot_client doc("me", 0, "");
  ASSERT_FALSE(doc.submit({C::insert("a")}));
  std::uint64_t seq = 4;
  ASSERT_TRUE(doc.flush(seq).has_value());
  EXPECT_EQ(*doc.receive({"me", 4, 0, ot::op{C::insert("a")}}), receive_result::acknowledged);
  EXPECT_TRUE(doc.synchronised());
  EXPECT_EQ(doc.version(), 1U);
}

TEST(OtClient, ResendsTheInflightOpAfterADisconnect) {
  ot_client doc("me", 2, "x");
  ASSERT_FALSE(doc.submit({C::insert("a")}));
  std::uint64_t seq = 1;
  auto first = doc.flush(seq);
  ASSERT_TRUE(first.has_value());
  doc.disconnected();
  auto again = doc.flush(seq);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->resend);
  EXPECT_EQ(again->seq, first->seq);
  EXPECT_EQ(again->src, "me");
  EXPECT_EQ(seq, 2U);
}

TEST(OtClient, AckMustMatchOurVersion) {
  ot_client doc("me", 2, "");
  EXPECT_EQ(doc.acknowledge(2), oplog::errc::version_mismatch);  // nothing in flight
  ASSERT_FALSE(doc.submit({C::insert("a")}));
  std::uint64_t seq = 1;
  ASSERT_TRUE(doc.flush(seq).has_value());
  EXPECT_EQ(doc.acknowledge(3), oplog::errc::version_mismatch);
  EXPECT_FALSE(doc.acknowledge(2));
}

}  // namespace
}  // namespace otsync::client

namespace otsync::client {
namespace {

TEST(OtClient, NormalisesEditsAsShareDbDoes) {
  ot_client doc("me", 0, "abc");
  EXPECT_FALSE(doc.submit({ot::component::skip(0), ot::component::insert("a")}));
  EXPECT_FALSE(doc.submit({ot::component::skip(3)}));  // a no-op once normalised
  EXPECT_FALSE(doc.submit({ot::component::skip(1), ot::component::skip(1), ot::component::insert("x")}));
  EXPECT_EQ(doc.text().to_string(), "aaxbc");
  std::uint64_t seq = 1;
  auto out = doc.flush(seq);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->op, (ot::op{ot::component::insert("a"), ot::component::skip(1), ot::component::insert("x")}));
}

TEST(OtClient, FailedReceiveChangesNothing) {
  ot_client doc("me", 0, "abc");
  ASSERT_FALSE(doc.submit({ot::component::insert("x")}));
  std::uint64_t seq = 1;
  ASSERT_TRUE(doc.flush(seq).has_value());
  // Skips past the end of the document: transforms fine, fails to apply.
  auto r = doc.receive({"other", 1, 0, ot::op{ot::component::skip(9), ot::component::insert("y")}});
  EXPECT_EQ(r.error(), ot::errc::op_too_long);
  EXPECT_EQ(doc.text().to_string(), "xabc");
  EXPECT_EQ(doc.version(), 0U);
  doc.disconnected();
  auto again = doc.flush(seq);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->op, (ot::op{ot::component::insert("x")}));
}

}  // namespace
}  // namespace otsync::client
