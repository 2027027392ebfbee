using Corral.Cli.Operations;
using Corral.Model;

namespace Corral.Cli.Tests;

/// <summary>The commands of their own (not the generic class commands): the XenAPI calls they make and what xe prints.</summary>
public class ExplicitCommandTests
{
    [Theory]
    [InlineData("vbd-plug uuid=b-1", "VBD.get_by_uuid(b-1)|VBD.plug(OpaqueRef:vbd1)")]
    [InlineData("vbd-unplug uuid=b-1", "VBD.get_by_uuid(b-1)|VBD.unplug(OpaqueRef:vbd1)")]
    [InlineData("vbd-unplug uuid=b-1 --force", "VBD.get_by_uuid(b-1)|VBD.unplug_force(OpaqueRef:vbd1)")]
    [InlineData("vif-plug uuid=i-1", "VIF.get_by_uuid(i-1)|VIF.plug(OpaqueRef:vif1)")]
    [InlineData("vif-unplug uuid=i-1", "VIF.get_by_uuid(i-1)|VIF.unplug(OpaqueRef:vif1)")]
    [InlineData("vif-unplug uuid=i-1 force=true", "VIF.get_by_uuid(i-1)|VIF.unplug_force(OpaqueRef:vif1)")]
    [InlineData("pbd-destroy uuid=pbd-1", "PBD.get_by_uuid(pbd-1)|PBD.destroy(OpaqueRef:pbd1)")]
    [InlineData("pbd-plug uuid=pbd-1", "PBD.get_by_uuid(pbd-1)|PBD.plug(OpaqueRef:pbd1)")]
    [InlineData("pbd-unplug uuid=pbd-1", "PBD.get_by_uuid(pbd-1)|PBD.unplug(OpaqueRef:pbd1)")]
    [InlineData("sr-forget uuid=s-1", "SR.get_by_uuid(s-1)|SR.forget(OpaqueRef:sr1)")]
    [InlineData("host-shutdown host=lab-host1", "host.get_all_records()|host.shutdown(OpaqueRef:h1)")]
    [InlineData("host-reboot uuid=h-1", "host.get_all_records()|host.reboot(OpaqueRef:h1)")]
    [InlineData("host-reset-server-certificate uuid=h-1", "host.get_all_records()|host.reset_server_certificate(OpaqueRef:h1)")]
    [InlineData("pool-enable-tls-verification", "pool.enable_tls_verification()")]
    [InlineData("pool-sync-database", "pool.sync_database()")]
    [InlineData("pif-reconfigure-ip uuid=pif-1 mode=Static ip=10.0.0.5 netmask=255.255.255.0 gateway=10.0.0.1 dns=10.0.0.2",
        "PIF.get_by_uuid(pif-1)|PIF.reconfigure_ip(OpaqueRef:pif1, Static, 10.0.0.5, 255.255.255.0, 10.0.0.1, 10.0.0.2)")]
    [InlineData("pif-reconfigure-ip uuid=pif-1 mode=dhcp", "PIF.get_by_uuid(pif-1)|PIF.reconfigure_ip(OpaqueRef:pif1, DHCP, , , , )")]
    [InlineData("user-password-change old=a new=b", "session.change_password(a, b)")]
    [InlineData("user-password-change new=b", "session.change_password(, b)")]
    [InlineData("subject-remove subject-uuid=su-1", "subject.get_by_uuid(su-1)|subject.destroy(OpaqueRef:subject)")]
    [InlineData("secret-destroy uuid=se-1", "secret.get_by_uuid(se-1)|secret.destroy(OpaqueRef:secret)")]
    [InlineData("message-create name=ALERT priority=5 body=disk\\ full vm-uuid=v-1", "message.create(ALERT, 5, VM, v-1, disk full)")]
    [InlineData("message-create name=ALERT priority=1 body=b sr-uuid=s-1 host-uuid=h-1", "message.create(ALERT, 1, SR, s-1, b)")]
    [InlineData("message-destroy uuid=m-1", "message.get_by_uuid(m-1)|message.destroy_many([OpaqueRef:m1])")]
    [InlineData("message-destroy uuids=m-1,m-2", "message.get_by_uuid(m-1)|message.get_by_uuid(m-2)|message.destroy_many([OpaqueRef:m1,OpaqueRef:m2])")]
    [InlineData("subject-role-add uuid=su-1 role-uuid=r-1", "role.get_by_uuid(r-1)|subject.get_by_uuid(su-1)|subject.add_to_roles(OpaqueRef:subject, OpaqueRef:admin)")]
    [InlineData("subject-role-remove uuid=su-1 role-name=pool-admin",
        "role.get_by_name_label(pool-admin)|subject.get_by_uuid(su-1)|subject.remove_from_roles(OpaqueRef:subject, OpaqueRef:admin)")]
    [InlineData("subject-role-add uuid=su-1 role-name=nobody", "role.get_by_name_label(nobody)|subject.get_by_uuid(su-1)|subject.add_to_roles(OpaqueRef:subject, OpaqueRef:NULL)")]
    public async Task Commands_make_xes_calls_and_print_nothing(string commandLine, string calls)
    {
        var pool = Pool();
        var (code, output, err) = await pool.RunAsync(Split(commandLine));
        Assert.Equal((0, "", ""), (code, output, err));
        Assert.Equal(calls.Split('|'), pool.CallLog);
    }

    [Theory]
    [InlineData("vbd-unplug uuid=b-1 timeout=soon", "Error: Failed to parse parameter 'timeout': expecting a float")]
    [InlineData("subject-role-add uuid=su-1", "Error: Required parameter not found: role-uuid or role-name")]
    [InlineData("subject-role-add uuid=su-1 role-uuid=r-1 role-name=pool-admin", "Error: Parameters role-uuid and role-name cannot be used together")]
    [InlineData("message-create name=A priority=high body=b vm-uuid=v-1", "Error: Priority field should be an integer")]
    [InlineData("message-create name=A priority=1 body=b", "Error: Need one of: vm-uuid, host-uuid, sr-uuid or pool-uuid")]
    [InlineData("message-destroy", "Error: Need one of uuid, uuids")]
    [InlineData("message-destroy uuid=m-1 uuids=m-2", "Error: Ambiguous arguments; need one of uuid, uuids")]
    [InlineData("pbd-create host-uuid=h-1", "Required parameter not found: sr-uuid\nFor usage run: 'xe help'")]
    [InlineData("sr-introduce uuid=u type=iso", "Required parameter not found: name-label\nFor usage run: 'xe help'")]
    [InlineData("pif-reconfigure-ip uuid=pif-1 mode=manual", "Error: Expected 'dhcp','none' or 'static', got manual")]
    public async Task Commands_refuse_what_xe_refuses_in_xes_words(string commandLine, string error)
    {
        var pool = Pool();
        var (code, output, err) = await pool.RunAsync(Split(commandLine));
        Assert.Equal((1, "", error + "\n"), (code, output, err));
        Assert.DoesNotContain(pool.CallLog, c => c.StartsWith("message.", StringComparison.Ordinal) || c.Contains("_roles", StringComparison.Ordinal) || c.Contains("unplug", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Host_server_certificate_install_sends_the_files_contents_as_read_where_xe_runs()
    {
        var directory = Directory.CreateTempSubdirectory("xe-cert-").FullName;
        try
        {
            var (certificate, key, chain) = (Path.Combine(directory, "cert.pem"), Path.Combine(directory, "key.pem"), Path.Combine(directory, "chain.pem"));
            await File.WriteAllTextAsync(certificate, "CERT");
            await File.WriteAllTextAsync(key, "KEY");
            await File.WriteAllTextAsync(chain, "CHAIN");
            var pool = Pool();
            Assert.Equal((0, "", ""), await pool.RunAsync("host-server-certificate-install", "uuid=h-1", $"certificate={certificate}", $"private-key={key}"));
            Assert.Equal((0, "", ""), await pool.RunAsync("host-server-certificate-install", "uuid=h-1", $"certificate={certificate}", $"private-key={key}",
                $"certificate-chain={chain}"));
            Assert.Equal(
            [
                "host.get_all_records()", "host.install_server_certificate(OpaqueRef:h1, CERT, KEY, )",
                "host.get_all_records()", "host.install_server_certificate(OpaqueRef:h1, CERT, KEY, CHAIN)",
            ], pool.CallLog);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Pbd_create_sends_the_device_config_and_prints_the_new_uuid()
    {
        var pool = Pool().Answer("PBD.create", "OpaqueRef:newpbd").Answer("PBD.get_uuid", "pbd-new");
        var (code, output, err) = await pool.RunAsync("pbd-create", "host-uuid=h-1", "sr-uuid=s-1", "device-config:path=/srv/nfs", "device-config-server=10.0.0.1");
        Assert.Equal((0, "pbd-new\n", ""), (code, output, err));
        Assert.Equal(
        [
            "host.get_by_uuid(h-1)", "SR.get_by_uuid(s-1)",
            "PBD.create({host:OpaqueRef:h1,SR:OpaqueRef:sr1,device_config:{path:/srv/nfs,server:10.0.0.1},other_config:{}})",
            "PBD.get_uuid(OpaqueRef:newpbd)",
        ], pool.CallLog);
    }

    [Fact]
    public async Task Sr_probe_asks_the_master_and_prints_the_storages_answer_as_it_came()
    {
        const string xml = "<?xml version=\"1.0\" ?>\n<SRlist>\n\t<SR>\n\t\t<UUID>5c6a3b0e, b</UUID>\n\t</SR>\n</SRlist>\n";
        var pool = Pool().Answer("SR.probe", xml);
        var (code, output, err) = await pool.RunAsync("sr-probe", "type=nfs", "device-config:server=10.0.0.1", "device-config:serverpath=/exports");
        Assert.Equal((0, xml + "\n", ""), (code, output, err));
        Assert.Equal(
        [
            "host.get_all()", "pool.get_all()", "pool.get_master(OpaqueRef:pool)",
            "SR.probe(OpaqueRef:h1, {server:10.0.0.1,serverpath:/exports}, nfs, {})",
        ], pool.CallLog);

        pool.Answer("SR.probe", "<value><array><data><value>Raw</value><value><string>found: /exports</string></value></data></array></value>");
        Assert.Equal("found: /exports\n", (await pool.RunAsync("sr-probe", "type=nfs", "host-uuid=h-1")).Out);
        Assert.Equal("SR.probe(OpaqueRef:h1, {}, nfs, {})", pool.CallLog.Last());
    }

    [Fact]
    public async Task Sr_introduce_takes_the_uuid_given_and_prints_it()
    {
        var pool = Pool().Answer("SR.introduce", "OpaqueRef:newsr");
        var (code, output, err) = await pool.RunAsync("sr-introduce", "uuid=7d1c", "name-label=ISOs", "type=iso", "content-type=iso", "shared=true",
            "sm-config:k=v");
        Assert.Equal((0, "7d1c\n", ""), (code, output, err));
        Assert.Equal(["SR.introduce(7d1c, ISOs, , iso, iso, true, {k:v})"], pool.CallLog);
    }

    [Fact]
    public async Task Subject_add_resolves_the_name_then_creates_the_subject()
    {
        var pool = Pool().Answer("auth.get_subject_identifier", "S-1-5-21-7").Answer("subject.create", "OpaqueRef:new").Answer("subject.get_uuid", "su-new");
        var (code, output, err) = await pool.RunAsync("subject-add", "subject-name=CORP\\alice");
        Assert.Equal((0, "su-new\n", ""), (code, output, err));
        Assert.Equal(
        [
            "auth.get_subject_identifier(CORP\\alice)", "subject.create({subject_identifier:S-1-5-21-7,other_config:{}})", "subject.get_uuid(OpaqueRef:new)",
        ], pool.CallLog);

        pool.Handlers["auth.get_subject_identifier"] = _ => throw new XenApiException("SUBJECT_CANNOT_BE_RESOLVED");
        (code, _, err) = await pool.RunAsync("subject-add", "subject-name=nobody");
        Assert.Equal((1, "Subject cannot be resolved by the external directory service.\n"), (code, err));
    }

    [Fact]
    public async Task Secret_create_prints_the_new_secrets_uuid()
    {
        var pool = Pool().Answer("secret.create", "OpaqueRef:s").Answer("secret.get_uuid", "se-new");
        var (code, output, _) = await pool.RunAsync("secret-create", "value=hunter2", "other-config:purpose=cifs");
        Assert.Equal((0, "se-new\n"), (code, output));
        Assert.Equal(["secret.create({value:hunter2,other_config:{purpose:cifs}})", "secret.get_uuid(OpaqueRef:s)"], pool.CallLog);
    }

    [Fact]
    public async Task Vtpm_create_prints_the_new_vtpms_uuid_and_vtpm_destroy_must_be_forced()
    {
        var pool = Pool().Answer("VTPM.create", "OpaqueRef:tpm").Answer("VTPM.get_uuid", "tpm-new");
        var (code, output, _) = await pool.RunAsync("vtpm-create", "vm-uuid=v-2", "is-unique=true");
        Assert.Equal((0, "tpm-new\n"), (code, output));
        Assert.Equal(["VM.get_by_uuid(v-2)", "VTPM.create(OpaqueRef:vm2, true)", "VTPM.get_uuid(OpaqueRef:tpm)"], pool.CallLog);

        pool = Pool();
        pool.Add("VTPM", "OpaqueRef:tpm", new() { ["uuid"] = "tpm-1", ["VM"] = "OpaqueRef:vm2" });
        pool.Answer("VTPM.destroy");
        var (refused, _, error) = await pool.RunAsync("vtpm-destroy", "uuid=tpm-1");
        Assert.Equal((1, "Error: " + Corral.Cli.Operations.VmCommands.NoForceMessage + "\n"), (refused, error));
        Assert.Empty(pool.CallLog);
        Assert.Equal(0, (await pool.RunAsync("vtpm-destroy", "uuid=tpm-1", "--force")).Code);
        Assert.Equal(["VTPM.get_by_uuid(tpm-1)", "VTPM.destroy(OpaqueRef:tpm)"], pool.CallLog);
    }

    [Fact]
    public async Task Host_get_server_certificate_prints_it_for_one_host_only()
    {
        const string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        var pool = Pool().Answer("host.get_server_certificate", pem);
        Assert.Equal((0, pem + "\n", ""), await pool.RunAsync("host-get-server-certificate"));
        Assert.Equal((0, "\n", ""), await pool.RunAsync("host-get-server-certificate", "--minimal"));

        pool.Add("host", "OpaqueRef:h2", new() { ["uuid"] = "h-2", ["name_label"] = "lab-host2" });
        var (code, _, err) = await pool.RunAsync("host-get-server-certificate", "--multiple");
        Assert.Equal((1, "Error: Multiple matching hosts found. Operation can only be performed on one host at a time\n"), (code, err));
        (code, _, err) = await pool.RunAsync("host-reboot");
        Assert.Equal((1, "Error: Multiple matching hosts found. --multiple required to complete the operation\n"), (code, err));
    }

    [Fact]
    public async Task Vbd_unplug_with_a_timeout_waits_for_a_refusing_guest_to_let_go()
    {
        var pool = Pool();
        pool.Registry = CommandRegistry.CreateDefault(TimeSpan.FromMilliseconds(1));
        pool.Handlers["VBD.unplug"] = _ => throw new XenApiException("DEVICE_DETACH_REJECTED", "VBD", "OpaqueRef:vbd1", "guest refused");
        var attached = new Queue<bool>([true, false]);
        pool.Handlers["VBD.get_currently_attached"] = _ => attached.Dequeue();
        Assert.Equal((0, "", ""), await pool.RunAsync("vbd-unplug", "uuid=b-1", "timeout=60"));
        Assert.Equal(["VBD.get_by_uuid(b-1)", "VBD.unplug(OpaqueRef:vbd1)", "VBD.get_currently_attached(OpaqueRef:vbd1)", "VBD.get_currently_attached(OpaqueRef:vbd1)"],
            pool.CallLog);

        // Without a timeout, the refusal is the answer.
        var (code, _, err) = await pool.RunAsync("vbd-unplug", "uuid=b-1");
        Assert.Equal((1, "The VM rejected the attempt to detach the device.\ntype: VBD\nref: b-1\nmsg: guest refused\n"), (code, err));
    }

    [Fact]
    public async Task Help_describes_the_new_commands_as_xe_does()
    {
        var (_, output, _) = await Pool().RunAsync("help", "vbd-unplug");
        Assert.Equal(
            "command name            : vbd-unplug\n" +
            "        reqd params     : uuid\n" +
            "        optional params : timeout, force\n" +
            "        description     : Attempt to detach the VBD while the VM is in the running state. If the optional argument 'timeout=N' is given then the command will wait for up to 'N' seconds for the unplug to complete. If the optional argument 'force' is given then it will be immediately unplugged.\n\n\n",
            output);
        (_, output, _) = await Pool().RunAsync("help", "host-get-server-certificate");
        Assert.Contains("optional params : <host-selectors>\n", output, StringComparison.Ordinal);
        (_, output, _) = await Pool().RunAsync("help", "bond-list");
        Assert.Contains("description     : Lists all the bonds, filtering on the optional arguments.", output, StringComparison.Ordinal);
        Assert.Contains("optional params : params, database:, uuid, master, slaves, mode, properties, primary-slave, links-up, auto-update-mac\n", output,
            StringComparison.Ordinal);
        (_, output, _) = await Pool().RunAsync("help", "patch-list");
        Assert.Contains("Lists all the patches,", output, StringComparison.Ordinal);

        var (_, all, _) = await Pool().RunAsync("help", "--all", "--minimal");
        foreach (var command in new[] { "pbd-create", "sr-probe", "subject-role-add", "message-destroy", "snapshot-list", "vtpm-param-list", "host-reboot" })
        {
            Assert.Contains(command, all.TrimEnd('\n').Split(','));
        }
    }

    /// <summary>The standard canned pool with the objects these commands name.</summary>
    [Theory]
    [InlineData("host-emergency-disable-tls-verification", "host.emergency_disable_tls_verification")]
    [InlineData("host-emergency-reenable-tls-verification", "host.emergency_reenable_tls_verification")]
    [InlineData("host-emergency-reset-server-certificate", "host.emergency_reset_server_certificate")]
    public async Task Emergency_commands_log_in_to_the_host_they_run_on_alone_as_xes_local_session(string command, string method)
    {
        var pool = Pool();
        pool.Handlers["session.slave_local_login_with_password"] = p => (string?)p[1] == pool.Password ? "OpaqueRef:local" : throw new XenApiException("SESSION_AUTHENTICATION_FAILED");
        pool.Answer(method);
        Assert.Equal((0, "", ""), await pool.RunAsync(command));
        Assert.Equal(["session.slave_local_login_with_password", method, "session.logout"], pool.Calls.Select(c => c.Method));
        Assert.Equal("OpaqueRef:local", pool.Calls[1].Args[0]);
        Assert.DoesNotContain(pool.Calls, c => c.Method == "session.login_with_password");
    }

    private static CannedPool Pool()
    {
        var pool = CannedPool.Standard();
        pool.Add("PBD", "OpaqueRef:pbd1", new() { ["uuid"] = "pbd-1", ["host"] = "OpaqueRef:h1", ["SR"] = "OpaqueRef:sr1" });
        pool.Add("subject", "OpaqueRef:subject", new() { ["uuid"] = "su-1", ["subject_identifier"] = "S-1-5-21-1" });
        pool.Add("role", "OpaqueRef:admin", new() { ["uuid"] = "r-1", ["name_label"] = "pool-admin", ["subroles"] = new List<object?> { "OpaqueRef:p" } });
        pool.Add("secret", "OpaqueRef:secret", new() { ["uuid"] = "se-1", ["value"] = "x" });
        pool.Add("PIF", "OpaqueRef:pif1", new() { ["uuid"] = "pif-1", ["device"] = "eth1" });
        pool.Add("message", "OpaqueRef:m1", new() { ["uuid"] = "m-1", ["name"] = "ALERT" });
        pool.Add("message", "OpaqueRef:m2", new() { ["uuid"] = "m-2", ["name"] = "ALERT" });
        foreach (var setter in new[]
                 {
                     "VBD.plug", "VBD.unplug", "VBD.unplug_force", "VIF.plug", "VIF.unplug", "VIF.unplug_force", "PBD.destroy", "PBD.plug", "PBD.unplug",
                     "SR.forget", "host.shutdown", "host.reboot", "session.change_password", "subject.destroy", "secret.destroy", "message.create",
                     "message.destroy_many", "subject.add_to_roles", "subject.remove_from_roles", "host.install_server_certificate", "host.reset_server_certificate",
                     "pool.enable_tls_verification", "pool.sync_database", "host.emergency_disable_tls_verification", "host.emergency_reenable_tls_verification",
                     "PIF.reconfigure_ip",
                 })
        {
            pool.Answer(setter);
        }

        return pool;
    }

    /// <summary>A command line split on spaces (a backslash keeps the space that follows it).</summary>
    private static string[] Split(string commandLine) =>
        commandLine.Replace("\\ ", "\u0001", StringComparison.Ordinal).Split(' ').Select(a => a.Replace('\u0001', ' ')).ToArray();
}
