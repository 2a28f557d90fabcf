#include "net/peer_incarnations.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace statekv::net {
namespace {

namespace fs = std::filesystem;

class PeerIncarnationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("statekv-incarnations-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(IncarnationRecords, RoundTripAndEveryMalformedFileIsCorruption) {
  IncarnationRecords r;
  r.self = 0x0123456789abcdef;
  r.peers[NodeId(2)] = 7;
  r.peers[NodeId(13)] = ~uint64_t{0};
  const std::string text = encode_incarnations(r);
  EXPECT_EQ(text, "self 0123456789abcdef\nnode 2 0000000000000007\nnode 13 ffffffffffffffff\n");
  auto back = decode_incarnations(text);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, r);

  for (const char* bad : {
           "",                                                  // no self line
           "self 0123456789abcdef",                             // torn: no newline
           "self 0000000000000000\n",                           // 0 is a client's
           "self 123\n",                                        // not 16 digits
           "node 2 0000000000000007\nself 0123456789abcdef\n",  // node before self
           "self 0123456789abcdef\nself 0123456789abcdef\n",    // self twice
           "self 0123456789abcdef\nnode 0 0000000000000007\n",  // node id 0
           "self 0123456789abcdef\nnode 2 0000000000000000\n",  // incarnation 0
           "self 0123456789abcdef\nnode 2 1\nnode 2 2\n",       // not 16 digits
           "self 0123456789abcdef\nnode 2 0000000000000007\nnode 2 0000000000000008\n",  // twice
           "self 0123456789abcdef\nnode x 0000000000000007\n",    // not a number
           "self 0123456789abcdef\nnode 2 0000000000000007 9\n",  // extra word
       }) {
    EXPECT_EQ(decode_incarnations(bad).status().code(), Status::Code::kCorruption)
        << "'" << bad << "'";
  }
}

TEST_F(PeerIncarnationsTest, ANewDirectoryDrawsAnIncarnationThatLastsAcrossOpens) {
  auto first = PeerIncarnations::open(dir_, true);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_TRUE((*first)->fresh());
  EXPECT_NE((*first)->self(), 0u);
  const uint64_t self = (*first)->self();
  first->reset();

  auto again = PeerIncarnations::open(dir_, true);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_FALSE((*again)->fresh());
  EXPECT_EQ((*again)->self(), self);

  // The directory created again (wiped, a new disk): another incarnation.
  fs::remove_all(dir_);
  auto wiped = PeerIncarnations::open(dir_, true);
  ASSERT_TRUE(wiped.ok());
  EXPECT_TRUE((*wiped)->fresh());
  EXPECT_NE((*wiped)->self(), self);
}

TEST_F(PeerIncarnationsTest, ThePeerFirstHeardIsRecordedDurablyAndAnotherIsDisowned) {
  {
    auto inc = PeerIncarnations::open(dir_, true);
    ASSERT_TRUE(inc.ok());
    EXPECT_EQ((*inc)->recorded(NodeId(2)), 0u);
    EXPECT_EQ(*(*inc)->check(NodeId(2), 42), PeerStanding::kRecorded);
    EXPECT_EQ(*(*inc)->check(NodeId(2), 42), PeerStanding::kKnown);
    EXPECT_EQ(*(*inc)->check(NodeId(3), 43), PeerStanding::kRecorded);
    EXPECT_EQ(*(*inc)->check(NodeId(2), 99), PeerStanding::kDisowned);
    // Disowning records nothing: the incarnation first heard stays.
    EXPECT_EQ((*inc)->recorded(NodeId(2)), 42u);
  }
  // A restart of this node keeps what it heard.
  auto reopened = PeerIncarnations::open(dir_, true);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(*(*reopened)->check(NodeId(2), 42), PeerStanding::kKnown);
  EXPECT_EQ(*(*reopened)->check(NodeId(3), 44), PeerStanding::kDisowned);
  EXPECT_FALSE(fs::exists(dir_ / "incarnations.tmp"));
}

TEST_F(PeerIncarnationsTest, AnUnreadableFileIsAnErrorNotANewIncarnation) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / PeerIncarnations::kFileName) << "self 0123";  // torn
  auto inc = PeerIncarnations::open(dir_, true);
  ASSERT_FALSE(inc.ok());
  EXPECT_EQ(inc.status().code(), Status::Code::kCorruption);
  EXPECT_NE(inc.status().message().find("incarnations"), std::string::npos)
      << inc.status().message();
}

TEST_F(PeerIncarnationsTest, APeerThatCannotBeRecordedIsNotTakenIn) {
  auto inc = PeerIncarnations::open(dir_, false);
  ASSERT_TRUE(inc.ok());
  // The directory gone from under it: the record cannot be written.
  fs::remove_all(dir_);
  auto standing = (*inc)->check(NodeId(2), 42);
  EXPECT_FALSE(standing.ok());
  EXPECT_EQ(standing.status().code(), Status::Code::kIOError);
  EXPECT_EQ((*inc)->recorded(NodeId(2)), 0u);
}

}  // namespace
}  // namespace statekv::net
