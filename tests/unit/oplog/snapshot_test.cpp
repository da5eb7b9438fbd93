#include "otsync/oplog/snapshot.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "otsync/oplog/error.hpp"
#include "otsync/ot/error.hpp"

namespace otsync::oplog {
namespace {

using C = ot::component;
constexpr const char* text_type = "http://sharejs.org/types/text-unicode";

op_record record(std::uint64_t version, op_body body, std::string src = "a", std::uint64_t seq = 1) {
  return {std::move(src), seq, version, std::move(body), 0};
}

TEST(Replay, NoOpsReturnsTheBase) {
  const snapshot base{3, text_type, "abc", create_record{"a", 1, 0}};
  EXPECT_EQ(*replay(base, {}), base);
}

TEST(Replay, CreateSetsTypeDataAndCreator) {
  const std::vector<op_record> ops{record(0, create_body{text_type, "hi"}, "c", 7)};
  const snapshot expected{1, text_type, "hi", create_record{"c", 7, 0}};
  EXPECT_EQ(*replay({}, ops), expected);
}

TEST(Replay, EditsApplyInOrder) {
  const std::vector<op_record> ops{record(0, create_body{text_type, "héllo"}),
                                   record(1, ot::op{C::skip(5), C::insert(" wörld")}), record(2, ot::op{C::erase("h")}),
                                   record(3, ot::op{C::insert("🙂")})};
  auto result = replay({}, ops);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->version, 4U);
  EXPECT_EQ(result->data, "🙂éllo wörld");
  EXPECT_EQ(result->type_uri, text_type);
}

TEST(Replay, DeleteClearsTypeAndDataAndKeepsTheCreator) {
  const std::vector<op_record> ops{record(0, create_body{text_type, "x"}, "c", 2), record(1, delete_body{})};
  const snapshot expected{2, std::nullopt, "", create_record{"c", 2, 0}};
  EXPECT_EQ(*replay({}, ops), expected);
}

TEST(Replay, CreateAfterDeleteStartsAfresh) {
  const std::vector<op_record> ops{record(0, create_body{text_type, "old"}), record(1, ot::op{C::insert("x")}),
                                   record(2, delete_body{}), record(3, create_body{text_type, "new"}, "b", 9),
                                   record(4, ot::op{C::skip(3), C::insert("!")})};
  const snapshot expected{5, text_type, "new!", create_record{"b", 9, 3}};
  EXPECT_EQ(*replay({}, ops), expected);
}

TEST(Replay, StartsFromAStoredSnapshot) {
  const snapshot base{10, text_type, "abc", create_record{"a", 1, 0}};
  const std::vector<op_record> ops{record(10, ot::op{C::skip(1), C::erase(1)})};
  EXPECT_EQ(replay(base, ops)->data, "ac");
}

TEST(Replay, VersionGapIsAMismatch) {
  const std::vector<op_record> ops{record(0, create_body{text_type, ""}), record(2, ot::op{C::insert("x")})};
  EXPECT_EQ(replay({}, ops).error(), errc::version_mismatch);
}

TEST(Replay, EditOfAnUntypedDocumentDoesNotExist) {
  EXPECT_EQ(replay({}, std::vector{record(0, ot::op{C::insert("x")})}).error(), errc::doc_does_not_exist);
  const std::vector<op_record> deleted{record(0, create_body{text_type, "x"}), record(1, delete_body{}),
                                       record(2, ot::op{C::insert("x")})};
  EXPECT_EQ(replay({}, deleted).error(), errc::doc_does_not_exist);
}

TEST(Replay, CreateOfATypedDocumentIsAlreadyCreated) {
  const std::vector<op_record> ops{record(0, create_body{text_type, ""}), record(1, create_body{text_type, ""})};
  EXPECT_EQ(replay({}, ops).error(), errc::doc_already_created);
}

TEST(Replay, DeleteOfAnUntypedDocumentIsAllowed) {
  EXPECT_EQ(replay({}, std::vector{record(0, delete_body{})})->version, 1U);
}

TEST(Replay, OtErrorsKeepTheirCategory) {
  const std::vector<op_record> ops{record(0, create_body{text_type, "ab"}), record(1, ot::op{C::skip(5)})};
  const auto error = replay({}, ops).error();
  EXPECT_EQ(&error.category(), &ot::error_category());
}

TEST(Replay, ManyEditsOnABigTextStayFast) {
  // 20k single-character inserts into 1 MB: quadratic copying would take
  // tens of seconds; the rope takes milliseconds.
  std::vector<op_record> ops{record(0, create_body{text_type, std::string(1'000'000, 'a')})};
  for (std::uint64_t i = 1; i <= 20'000; ++i) {
    ops.push_back(record(i, ot::op{C::skip((i * 7919) % 1'000'000 + 1), C::insert("b")}));
  }
  auto result = replay({}, ops);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->data.size(), 1'020'000U);
}

}  // namespace
}  // namespace otsync::oplog
