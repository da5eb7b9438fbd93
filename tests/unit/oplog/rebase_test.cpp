#include "otsync/oplog/rebase.hpp"
#include "otsync/ot/error.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace otsync::oplog {
namespace {

using C = ot::component;

op_record edit(std::string src, std::uint64_t seq, std::uint64_t version, ot::op o) {
  return {std::move(src), seq, version, std::move(o)};
}

TEST(Rebase, AtTheHeadNothingChanges) {
  submission s{"b", 1, 3, ot::op{C::insert("x")}};
  EXPECT_EQ(*rebase(s, {}, 3), rebase_status::ready);
  EXPECT_EQ(s.version, 3U);
}

TEST(Rebase, TransformsAsLeftAgainstEachCommittedOp) {
  const std::vector<op_record> history{edit("a", 1, 1, {C::insert("A")}),
                                       edit("a", 2, 2, {C::skip(1), C::insert("B")})};
  submission s{"b", 1, 1, ot::op{C::insert("X")}};
  EXPECT_EQ(*rebase(s, history, 3), rebase_status::ready);
  EXPECT_EQ(s.version, 3U);
  // left: X goes before the A inserted at the same place; then B is after A, so after X.
  EXPECT_EQ(std::get<ot::op>(s.body), (ot::op{C::insert("X")}));
}

TEST(Rebase, SpotsAResendAndReportsTheOriginalVersion) {
  const std::vector<op_record> history{edit("a", 1, 4, {C::insert("A")}), edit("b", 7, 5, {C::insert("X")}),
                                       edit("a", 2, 6, {C::insert("B")})};
  submission s{"b", 7, 4, ot::op{C::insert("X")}};
  EXPECT_EQ(*rebase(s, history, 7), rebase_status::already_submitted);
  EXPECT_EQ(s.version, 5U);
}

TEST(Rebase, VersionErrors) {
  submission future{"b", 1, 9, ot::op{}};
  EXPECT_EQ(rebase(future, {}, 3).error(), errc::version_from_the_future);
  submission old{"b", 1, 1, ot::op{}};
  const std::vector<op_record> short_history{edit("a", 1, 1, {})};
  EXPECT_EQ(rebase(old, short_history, 3).error(), errc::transform_ops_not_found);
  const std::vector<op_record> gap{edit("a", 1, 1, {}), edit("a", 2, 5, {})};
  submission again{"b", 1, 1, ot::op{}};
  EXPECT_EQ(rebase(again, gap, 3).error(), errc::version_mismatch);
}

TEST(Rebase, CreatesAndDeletesFollowShareDb) {
  const std::vector<op_record> deleted{{"a", 1, 2, delete_body{}}};
  submission e{"b", 1, 2, ot::op{C::insert("x")}};
  EXPECT_EQ(rebase(e, deleted, 3).error(), errc::doc_was_deleted);
  submission d{"b", 1, 2, delete_body{}};
  EXPECT_EQ(*rebase(d, deleted, 3), rebase_status::ready);

  const std::vector<op_record> created{{"a", 1, 0, create_body{"http://sharejs.org/types/text-unicode", ""}}};
  submission c{"b", 1, 0, create_body{"http://sharejs.org/types/text-unicode", "x"}};
  EXPECT_EQ(rebase(c, created, 1).error(), errc::doc_already_created);
  submission d2{"b", 1, 0, delete_body{}};
  EXPECT_EQ(rebase(d2, created, 1).error(), errc::doc_already_created);

  const std::vector<op_record> edited{edit("a", 1, 1, {C::insert("A")})};
  submission c2{"b", 1, 1, create_body{"http://sharejs.org/types/text-unicode", "x"}};
  EXPECT_EQ(rebase(c2, edited, 2).error(), errc::doc_already_created);
}

TEST(Rebase, NullVersionMeansTheHead) {
  submission s{"b", 1, std::nullopt, create_body{"http://sharejs.org/types/text-unicode", "x"}};
  EXPECT_EQ(*rebase(s, {}, 0), rebase_status::ready);
  EXPECT_EQ(s.version, 0U);
}

TEST(Rebase, OtErrorsComeThrough) {
  const std::vector<op_record> history{edit("a", 1, 0, {C::insert("A")})};
  submission s{"b", 1, 0, ot::op{C::skip(1)}};
  EXPECT_EQ(rebase(s, history, 1).error(), ot::errc::trailing_skip);
}

TEST(Rebase, ErrorsMapToShareDbCodes) {
  EXPECT_EQ(sharedb_code(errc::doc_was_deleted), "ERR_DOC_WAS_DELETED");
  EXPECT_EQ(sharedb_code(errc::transform_ops_not_found), "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND");
  EXPECT_EQ(make_error_code(errc::version_from_the_future).message(), "Op version newer than current snapshot");
}

}  // namespace
}  // namespace otsync::oplog

namespace otsync::oplog {
namespace {

TEST(Rebase, NoSrcNeverMatchesAsAResend) {
  const std::vector<op_record> history{{"", 1, 0, ot::op{ot::component::insert("A")}}};
  submission s{"", 1, 0, ot::op{ot::component::insert("B")}};
  EXPECT_EQ(*rebase(s, history, 1), rebase_status::ready);
}

}  // namespace
}  // namespace otsync::oplog
