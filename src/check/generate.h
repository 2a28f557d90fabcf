// Generated register histories shaped like Jepsen's etcd register tests, to
// measure and test the linearizability checker on what real faults produce.
//
// Shape: a few keys, values from a small set (so they repeat), reads, writes and
// compare-and-sets in equal parts, many concurrent clients, and a large share of
// operations that time out (`info`). A client whose operation times out is
// replaced by a new process id (Jepsen's convention: the old process may still
// have an operation in flight), so a history has many more processes than clients.
//
// The history is produced by simulating one atomic register per key: every op
// takes effect at one instant inside its interval (a timed-out op at any instant
// after its invoke, or never), in that global order, so the result is linearizable
// by construction. With `plant_violation` one read late in the history is changed
// to return a value that can no longer be there (see EtcdGenOptions), so the result
// is certainly not linearizable, yet every value it reads is written many times.
#pragma once

#include <cstdint>

#include "check/history.h"
#include "core/random.h"

namespace statekv::check {

struct EtcdGenOptions {
  int clients = 10;      // concurrent clients (each one op in flight at a time)
  int keys = 1;          // keys k0..k{keys-1}
  int ops = 70;          // operations in the history
  int values = 5;        // values "0".."{values-1}"; reads/cas see repeats
  double p_info = 0.25;  // share of ops that time out
  double p_read = 1.0 / 3, p_write = 1.0 / 3;  // the rest: cas
  int64_t latency = 10;   // a completed op's duration is uniform in [1, latency]
  int64_t timeout = 100;  // a timed-out op reports info after this long
  int64_t max_gap = 5;    // pause of a client between two ops, uniform in [1, max_gap]
  // Plant a violation: the last value ("{values-1}") is written only in the first
  // third of the ops and never by an op that times out; then one ok read, invoked
  // after some ok op completed that overwrote it (invoked after the last of its
  // writers completed), is changed to read it. No order can explain that read.
  bool plant_violation = false;
};

struct GeneratedHistory {
  History history;
  // With plant_violation: false when the history offered no read to change (the
  // history is then linearizable); true otherwise.
  bool planted = false;
};

GeneratedHistory generate_etcd_register(const EtcdGenOptions& options, Random& rng);

}  // namespace statekv::check
