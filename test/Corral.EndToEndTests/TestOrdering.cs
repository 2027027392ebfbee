using Xunit;

// One test class at a time: these run real hosts whose leases, heartbeats and migrations depend on timing, and two of
// them side by side on a 2-core machine starve each other's QEMUs and agents (a fault test's guest sharing the CPU with
// another test's booting guests is not the scenario it checks).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
