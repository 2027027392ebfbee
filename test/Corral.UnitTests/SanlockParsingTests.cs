using Corral.Hypervisor;
using Corral.Leases.Sanlock;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.UnitTests;

/// <summary>How Corral reads what Debian's sanlock 3.8 prints (the texts below are its real output), and its settings.</summary>
public sealed class SanlockParsingTests
{
    private const string Dump = """
          offset                            lockspace                                         resource  timestamp  own  gen lver/req/mode
        00000000                               corral                                              vm1 0000000000 0002 0001 2/0/0
                                                                                                                  0002 0001 SH
                                                                                                                  0003 0004 SH
        """;

    [Fact]
    public void A_lease_held_shared_has_no_exclusive_owner_and_every_shared_holder()
    {
        var holders = SanlockClient.ParseHolders(Dump, "vm1");
        Assert.Null(holders.ExclusiveOwner);
        Assert.Equal([2, 3], holders.SharedHolders);
        Assert.Equal([2, 3], holders.All.Order());
    }

    [Fact]
    public void A_lease_held_exclusive_names_its_owner_and_a_free_one_nobody()
    {
        const string held = "00000000  corral  vm1 0000022311 0001 0001 1/0/0\n";
        Assert.Equal(1, SanlockClient.ParseHolders(held, "vm1").ExclusiveOwner);
        Assert.Empty(SanlockClient.ParseHolders(held, "vm2").All);
        Assert.Empty(SanlockClient.ParseHolders("00000000  corral  vm1 0000000000 0001 0001 1/0/0\n", "vm1").All);
    }

    [Fact]
    public void The_result_is_the_last_done_line()
    {
        Assert.Equal(("acquire", -243), SanlockClient.LastDone("register\nregister done 3\nacquire fd 3\nacquire done -243\n"));
        Assert.Equal(("add_lockspace_timeout", 0), SanlockClient.LastDone("add_lockspace_timeout 1\nadd_lockspace_timeout done 0"));
        Assert.Null(SanlockClient.LastDone("nothing"));
    }

    [Theory]
    [InlineData("register done 3\nacquire fd 3\nacquire done -243", "another host holds the VM's lease")]
    [InlineData("register done 3\nacquire fd 3\nacquire done -17", "this host already holds the VM's lease")]
    [InlineData("register done -111", "sanlock daemon did not take the VM's process")]
    [InlineData("qemu-system-x86_64: -m 0: Invalid RAM size", "qemu-system-x86_64: -m 0: Invalid RAM size")]
    public void A_failed_launch_is_explained(string output, string expected)
    {
        var launcher = new SanlockLeaseLauncher(new SanlockClient(Options.Create(new SanlockOptions())));
        Assert.Contains(expected, launcher.Explain(output), StringComparison.Ordinal);
    }

    [Fact]
    public void The_launch_takes_the_lease_as_the_mode_says_then_becomes_the_program()
    {
        var client = new SanlockClient(Options.Create(new SanlockOptions { RunDirectory = "/run/lab/host1/sanlock" }));
        var launcher = new SanlockLeaseLauncher(client);
        var lease = new VmLease("sr", "vm", "/sr/.corral-leases/sr/vm");
        var exclusive = launcher.Wrap(lease, "/usr/bin/qemu-system-x86_64", ["-name", "x"]);
        Assert.Equal(["client", "command", "-r", "sr:vm:/sr/.corral-leases/sr/vm:0", "-c", "/usr/bin/qemu-system-x86_64", "-name", "x"], exclusive.Arguments);
        Assert.Equal("/run/lab/host1/sanlock", exclusive.Environment["SANLOCK_RUN_DIR"]);
        Assert.Equal("sr:vm:/sr/.corral-leases/sr/vm:0:SH", launcher.Wrap(lease with { Mode = VmLeaseMode.Shared }, "q", []).Arguments[3]);
        Assert.DoesNotContain("-r", launcher.Wrap(lease with { Mode = VmLeaseMode.Later }, "q", []).Arguments);
    }

    [Fact]
    public void A_lease_in_an_srs_lease_volume_is_named_at_its_offset()
    {
        var lease = new VmLease("sr", "vm", "/run/corral/leases/sr.leases", Offset: 3 << 20);
        Assert.Equal("sr:vm:/run/corral/leases/sr.leases:3145728", SanlockClient.ResourceString(lease));
        Assert.Equal("sr:vm:/run/corral/leases/sr.leases:3145728:SH", SanlockClient.ResourceString(lease, shared: true));
        Assert.Equal("sr:2:/run/corral/leases/sr.leases:0", SanlockClient.LockspaceString("sr", 2, lease.Path));
    }

    [Fact]
    public async Task A_sanlock_command_that_does_not_answer_in_time_fails_as_timed_out_and_cancels_nothing_of_the_callers()
    {
        // As sanlock reading a volume whose storage stopped answering: it never returns.
        var script = Path.Combine(Path.GetTempPath(), $"corral-sanlock-hangs-{Guid.NewGuid():N}");
        File.WriteAllText(script, "#!/bin/sh\nexec sleep 30\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }

        try
        {
            var client = new SanlockClient(Options.Create(new SanlockOptions { Binary = script, JoinTimeout = TimeSpan.FromMilliseconds(500) }));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var result = await client.AddLockspaceAsync("sr", 1, "/run/corral/leases/sr.leases", CancellationToken.None);
            Assert.Equal(SanlockClient.TimedOut, result.Code);
            Assert.Contains("did not answer within 0.5 s", result.Output, StringComparison.Ordinal);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
            // The caller's cancellation must win by far over the command's own limit: on a loaded machine two timers
            // due close together may fire in either order.
            var patient = new SanlockClient(Options.Create(new SanlockOptions { Binary = script, JoinTimeout = TimeSpan.FromSeconds(25) }));
            using var cancelled = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => patient.AddLockspaceAsync("sr", 1, "/x", cancelled.Token));
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public void A_leaders_fields_are_read_from_read_leader()
    {
        const string leader = "read_leader done -227\nmagic 0x6152010\nspace_name sr\nresource_name 1d6c2b8e-vm\ntimestamp 0\n";
        Assert.Equal("1d6c2b8e-vm", SanlockClient.LeaderField(leader, "resource_name"));
        Assert.Equal("sr", SanlockClient.LeaderField(leader, "space_name"));
        Assert.Null(SanlockClient.LeaderField("read_leader done -223\nresource_name \n", "resource_name"));
    }

    [Fact]
    public void Settings_sanlock_would_refuse_are_refused_at_start_when_leases_are_on()
    {
        var validation = new SanlockOptionsValidation();
        Assert.True(validation.Validate(null, new SanlockOptions { Enabled = true }).Succeeded);
        Assert.True(validation.Validate(null, new SanlockOptions { Enabled = false, IoTimeoutSeconds = 0 }).Succeeded);
        var refused = validation.Validate(null, new SanlockOptions { Enabled = true, IoTimeoutSeconds = 0, Binary = "" });
        Assert.True(refused.Failed);
        Assert.Contains("Corral:Sanlock:IoTimeoutSeconds", refused.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Corral:Sanlock:Binary", refused.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Corral:Sanlock:JoinTimeout", validation.Validate(null, new SanlockOptions { Enabled = true, JoinTimeout = TimeSpan.FromSeconds(5) }).FailureMessage,
            StringComparison.Ordinal);
        Assert.Contains("Corral:Sanlock:VolumeDirectory", validation.Validate(null, new SanlockOptions { Enabled = true, VolumeDirectory = "run/leases" }).FailureMessage,
            StringComparison.Ordinal);
    }

    [Fact]
    public void Status_lists_the_daemons_lockspaces_with_their_transition_and_the_leases_its_processes_hold()
    {
        // As Debian's sanlock 3.8 prints it, with a lockspace being removed and a path holding a colon.
        const string status = """
            daemon lab-host1
            p -1 helper
            p -1 listener
            p 21764 
            p -1 status
            s 11111111-2222-3333-4444-555555555555:3:/run/corral/leases/11111111-2222-3333-4444-555555555555.leases:0
            s 66666666-2222-3333-4444-555555555555:12:/srv/a:b/.corral-leases/66666666-2222-3333-4444-555555555555/lockspace:0 REM
            r 11111111-2222-3333-4444-555555555555:vm1:/run/corral/leases/11111111-2222-3333-4444-555555555555.leases:1048576:1 p 21764
            """;
        var parsed = SanlockStatus.Parse(status);
        Assert.Equal(
            [
                new JoinedLockspace("11111111-2222-3333-4444-555555555555", 3, "/run/corral/leases/11111111-2222-3333-4444-555555555555.leases", null),
                new JoinedLockspace("66666666-2222-3333-4444-555555555555", 12, "/srv/a:b/.corral-leases/66666666-2222-3333-4444-555555555555/lockspace", "REM"),
            ],
            parsed.Lockspaces);
        Assert.Equal([new HeldLease("11111111-2222-3333-4444-555555555555", "vm1", 21764)], parsed.Leases);
        Assert.Empty(SanlockStatus.Parse("daemon h\np -1 helper\n").Lockspaces);
    }
}
