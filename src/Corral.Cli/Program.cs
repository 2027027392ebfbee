using Corral.Cli;
using Corral.Model;

// xe: XenServer's command line for a Corral pool. Connection from -s/-p/-u/-pw, else ~/.xe.
try
{
    var arguments = CliArguments.Parse(args);
    if (arguments.Command is "" or "help")
    {
        Console.WriteLine("Usage: xe [-s server] [-p port] [-u user] [-pw password] <command> [key=value ...] [--minimal] [--force] [--multiple]");
        Console.WriteLine("Commands: host-list vm-list template-list sr-list vdi-list vbd-list vif-list network-list pool-list pbd-list pif-list task-list");
        Console.WriteLine("          <class>-param-list/-param-get/-param-set, vm-install vm-start vm-shutdown vm-reboot vm-pause vm-unpause vm-uninstall vm-destroy");
        Console.WriteLine("          sr-create sr-scan vdi-create vdi-destroy vdi-resize vdi-clone vm-disk-add vm-cd-add vm-cd-insert vm-cd-eject host-enable host-disable");
        return 0;
    }

    arguments.ApplyConfigFile(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".xe"));
    var server = arguments.Server ?? "localhost";
    var port = arguments.Port ?? 80;
    var api = new XenApiClient(new Uri($"http://{server}:{port}"));
    using var cts = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        cts.Cancel();
    };
    try
    {
        try
        {
            await api.LoginAsync(arguments.User ?? "root", arguments.Password ?? "", cts.Token);
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.HostIsSlave && ex.Parameters.Count > 0 && ex.Parameters[0].Length > 0)
        {
            // Like XenServer's xe: a slave names the master, and the command goes there.
            api.Dispose();
            api = new XenApiClient(new Uri($"http://{ex.Parameters[0]}:{port}"));
            await api.LoginAsync(arguments.User ?? "root", arguments.Password ?? "", cts.Token);
        }

        return await new Commands(api, arguments, Console.Out).RunAsync(cts.Token);
    }
    finally
    {
        try
        {
            await api.LogoutAsync(CancellationToken.None);
        }
        catch (Exception)
        {
            // The command's own outcome is what matters; a failed logout only leaves a session to expire.
        }

        api.Dispose();
    }
}
catch (CliException ex)
{
    Console.Error.WriteLine(ex.Message);
    return 1;
}
catch (XenApiException ex) when (ex.Code == ErrorCodes.SessionAuthenticationFailed)
{
    Console.Error.WriteLine("Authentication failed");
    return 1;
}
catch (XenApiException ex)
{
    Console.Error.WriteLine($"Error code: {ex.Code}");
    Console.Error.WriteLine($"Error parameters: {string.Join(", ", ex.Parameters)}");
    return 1;
}
catch (HttpRequestException ex)
{
    Console.Error.WriteLine($"Error: Connection refused ({ex.Message})");
    return 3;
}
