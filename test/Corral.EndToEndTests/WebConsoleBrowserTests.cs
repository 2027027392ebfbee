using System.Globalization;
using Microsoft.Playwright;
using Xunit;
using Xunit.Abstractions;

namespace Corral.EndToEndTests;

/// <summary>
/// The web console in a real headless Chromium (Debian's) against a lab, as an administrator uses it: log in, see the
/// seed's pool, start a VM, put its host in maintenance mode and watch the VMs leave, type into a guest's serial
/// console; at desktop and phone sizes, by keyboard, with nothing in the browser's error log.
/// Set CORRAL_SCREENSHOT_DIR to keep screenshots (docs/images holds the ones the README shows).
/// </summary>
[Collection(FaultLabCollection.Name)]
public sealed class WebConsoleBrowserTests(FaultLab fault, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Tools = "Corral test VM";
    private const string NoTools = "Corral test VM (no tools)";
    private static readonly float Patience = (float)TimeSpan.FromSeconds(30).TotalMilliseconds;
    private readonly LabSession _lab = fault.Lab;
    private readonly List<string> _browserErrors = [];

    // Pages whose errors no longer count: a page that watched its host lose power rightly logs failed requests.
    private readonly HashSet<IPage> _excused = [];
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            // Tests run as root, where Chromium's sandbox cannot start.
            Args = ["--no-sandbox"],
        });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }

    private string ConsoleUrl => $"http://{_lab.Addresses[_servedBy]}/console/";

    // The host whose address the browser opens (lab-host1 until its plug is pulled).
    private int _servedBy;

    private async Task<IPage> OpenAsync(int width, int height)
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = height } });
        var page = await context.NewPageAsync();
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && !_excused.Contains(page))
            {
                lock (_browserErrors)
                {
                    _browserErrors.Add($"{width}x{height} console: {message.Text}");
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (_browserErrors)
            {
                _browserErrors.Add($"{width}x{height} page error: {error}");
            }
        };
        page.RequestFailed += (_, request) =>
        {
            // A long poll cut short by a closing page is no error; anything else failing is.
            if (!request.Url.EndsWith("/jsonrpc", StringComparison.Ordinal) && !_excused.Contains(page))
            {
                lock (_browserErrors)
                {
                    _browserErrors.Add($"{width}x{height} request failed: {request.Url} {request.Failure}");
                }
            }
        };
        await page.GotoAsync(ConsoleUrl);
        return page;
    }

    private async Task LogInAsync(IPage page, string user = "root")
    {
        await page.GetByLabel("User name").FillAsync(user);
        await page.GetByLabel("Password").FillAsync(_lab.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Tree)).ToBeVisibleAsync(new() { Timeout = Patience });
    }

    private static ILocator TreeItem(IPage page, string name) =>
        page.GetByRole(AriaRole.Treeitem, new() { Name = name, Exact = true });

    /// <summary>The VM's tree item under the host's (the tree places running VMs under their host).</summary>
    private static ILocator VmUnderHost(IPage page, string host, string vm) =>
        page.Locator($"li[role=treeitem][aria-label=\"{host}\"] li[role=treeitem][aria-label=\"{vm}\"]");

    private async Task ScreenshotAsync(IPage page, string name)
    {
        if (Environment.GetEnvironmentVariable("CORRAL_SCREENSHOT_DIR") is { Length: > 0 } directory)
        {
            Directory.CreateDirectory(directory);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory, name + ".png") });
            output.WriteLine($"screenshot {name}.png");
        }
    }

    [Fact]
    public async Task An_administrator_runs_the_seed_pool_from_the_browser()
    {
        await fault.ResetAsync(bothVmsRunning: true);
        var page = await OpenAsync(1280, 800);
        await LogInAsync(page);

        // The seed's pool: three hosts, the master marked, both VMs running on it, the shared SR and the ISO library.
        foreach (var host in new[] { "lab-host1", "lab-host2", "lab-host3" })
        {
            await Assertions.Expect(TreeItem(page, host)).ToBeVisibleAsync(new() { Timeout = Patience });
        }

        await Assertions.Expect(TreeItem(page, "lab-host1")).ToHaveAttributeAsync("data-status", new System.Text.RegularExpressions.Regex("master"));
        await Assertions.Expect(VmUnderHost(page, "lab-host1", Tools)).ToBeVisibleAsync();
        await Assertions.Expect(VmUnderHost(page, "lab-host1", NoTools)).ToBeVisibleAsync();
        await Assertions.Expect(TreeItem(page, "Shared storage")).ToBeVisibleAsync();
        await Assertions.Expect(TreeItem(page, "ISO library")).ToBeVisibleAsync();
        await ScreenshotAsync(page, "console-tree");
        await TheDirectorysUsersSeeWhatTheirRolesAllowAsync();

        // The General tab of the VM with tools: running on the master, its address, and the guest agent seen.
        await VmUnderHost(page, "lab-host1", Tools).Locator(".tree-row").First.ClickAsync();
        await page.GetByRole(AriaRole.Tab, new() { Name = "General" }).ClickAsync();
        var general = page.GetByRole(AriaRole.Tabpanel);
        await Assertions.Expect(general).ToContainTextAsync("Running", new() { Timeout = Patience });
        await Assertions.Expect(general).ToContainTextAsync("lab-host1");
        await Assertions.Expect(general).ToContainTextAsync("Optimized", new() { Timeout = Patience });
        var toolsIp = await _lab.Xe("vm-param-get", $"uuid={await _lab.Xe("vm-list", $"name-label={Tools}", "--minimal")}", "param-name=networks", "param-key=0/ip");
        await Assertions.Expect(general).ToContainTextAsync(toolsIp, new() { Timeout = Patience });
        await ScreenshotAsync(page, "console-general");

        // The VM without tools: "Tools not installed"; shut it down and start it again from the toolbar.
        await VmUnderHost(page, "lab-host1", NoTools).Locator(".tree-row").First.ClickAsync();
        await Assertions.Expect(general).ToContainTextAsync("Tools not installed", new() { Timeout = Patience });
        await page.GetByRole(AriaRole.Button, new() { Name = "Shut down", Exact = true }).ClickAsync();
        await Assertions.Expect(TreeItem(page, NoTools)).ToHaveAttributeAsync("data-status", new System.Text.RegularExpressions.Regex("halted"),
            new() { Timeout = (float)TimeSpan.FromSeconds(120).TotalMilliseconds });
        await Assertions.Expect(VmUnderHost(page, "lab-host1", NoTools)).ToHaveCountAsync(0);
        await page.GetByRole(AriaRole.Button, new() { Name = "Start", Exact = true }).ClickAsync();
        await Assertions.Expect(TreeItem(page, NoTools)).ToHaveAttributeAsync("data-status", new System.Text.RegularExpressions.Regex("running"),
            new() { Timeout = (float)TimeSpan.FromSeconds(60).TotalMilliseconds });
        Assert.Equal("running", await _lab.Xe("vm-param-get", $"uuid={await _lab.Xe("vm-list", $"name-label={NoTools}", "--minimal")}", "param-name=power-state"));

        // The serial console of the VM with tools: the guest's shell prompt, and an answer to what is typed.
        await TreeItem(page, Tools).Locator(".tree-row").First.ClickAsync();
        await page.GetByRole(AriaRole.Tab, new() { Name = "Console" }).ClickAsync();
        var serial = page.GetByRole(AriaRole.Log, new() { Name = $"Serial console of {Tools}" });
        await Assertions.Expect(serial).ToBeVisibleAsync(new() { Timeout = Patience });
        await serial.FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(serial).ToContainTextAsync("corral-guest:/#", new() { Timeout = Patience });
        await page.Keyboard.TypeAsync("echo console-$((6*7))");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(serial).ToContainTextAsync("console-42", new() { Timeout = Patience });

        // Maintenance mode on the VMs' host: the dialog lists what will move, then the tree shows them leaving.
        var toolsHost = await HostNumberOfAsync(Tools);
        var hostName = $"lab-host{toolsHost.ToString(CultureInfo.InvariantCulture)}";
        await TreeItem(page, hostName).Locator(".tree-row").First.ClickAsync(new() { Button = MouseButton.Right });
        await page.GetByRole(AriaRole.Menuitem, new() { Name = "Enter Maintenance Mode" }).ClickAsync();
        var dialog = page.GetByRole(AriaRole.Dialog, new() { Name = "Enter Maintenance Mode" });
        await Assertions.Expect(dialog).ToBeVisibleAsync();
        await Assertions.Expect(dialog).ToContainTextAsync(Tools, new() { Timeout = Patience });
        await ScreenshotAsync(page, "console-maintenance");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Enter Maintenance Mode" }).ClickAsync();
        await Assertions.Expect(VmUnderHost(page, hostName, Tools)).ToHaveCountAsync(0, new() { Timeout = (float)TimeSpan.FromSeconds(120).TotalMilliseconds });
        await Assertions.Expect(TreeItem(page, hostName)).ToHaveAttributeAsync("data-status", new System.Text.RegularExpressions.Regex("maintenance"),
            new() { Timeout = Patience });
        Assert.NotEqual(toolsHost, await HostNumberOfAsync(Tools));
        await Assertions.Expect(VmUnderHost(page, $"lab-host{(await HostNumberOfAsync(Tools)).ToString(CultureInfo.InvariantCulture)}", Tools)).ToBeVisibleAsync();

        // And out of it again.
        await TreeItem(page, hostName).Locator(".tree-row").First.ClickAsync(new() { Button = MouseButton.Right });
        await page.GetByRole(AriaRole.Menuitem, new() { Name = "Exit Maintenance Mode" }).ClickAsync();
        await Assertions.Expect(TreeItem(page, hostName)).Not.ToHaveAttributeAsync("data-status", new System.Text.RegularExpressions.Regex("maintenance"),
            new() { Timeout = Patience });

        // A new VM from a template, on the pool's default SR (the shared one), with no home server.
        await page.GetByRole(AriaRole.Button, new() { Name = "New VM", Exact = true }).ClickAsync();
        var create = page.GetByRole(AriaRole.Dialog, new() { Name = "New VM" });
        await create.GetByLabel("Template").SelectOptionAsync(new SelectOptionValue { Label = "Corral Linux test (no tools)" });
        await create.GetByLabel("Name", new() { Exact = true }).FillAsync("Made in the console");
        await Assertions.Expect(create.GetByLabel("Home server")).ToHaveValueAsync("OpaqueRef:NULL");
        await create.GetByLabel("Start the new VM").UncheckAsync();
        await create.GetByRole(AriaRole.Button, new() { Name = "Create" }).ClickAsync();
        await Assertions.Expect(TreeItem(page, "Made in the console")).ToHaveAttributeAsync("data-status", new System.Text.RegularExpressions.Regex("halted"),
            new() { Timeout = (float)TimeSpan.FromSeconds(60).TotalMilliseconds });
        var made = await _lab.Xe("vm-list", "name-label=Made in the console", "--minimal");
        Assert.Equal("<not in database>", await _lab.Xe("vm-param-get", $"uuid={made}", "param-name=affinity"));
        var disk = (await _lab.Xe("vbd-list", $"vm-uuid={made}", "type=Disk", "params=vdi-uuid", "--minimal")).Split(',')[0];
        Assert.Equal("Shared storage", await _lab.Xe("vdi-param-get", $"uuid={disk}", "param-name=sr-name-label"));

        // Drag the VM onto another host: it migrates live, and the tree follows.
        var from = await HostNumberOfAsync(Tools);
        var to = new[] { 1, 2, 3 }.First(h => h != from && h != toolsHost);
        var target = $"lab-host{to.ToString(CultureInfo.InvariantCulture)}";
        await VmUnderHost(page, $"lab-host{from.ToString(CultureInfo.InvariantCulture)}", Tools).Locator(".tree-row").First
            .DragToAsync(TreeItem(page, target).Locator(".tree-row").First);
        await Assertions.Expect(VmUnderHost(page, target, Tools)).ToBeVisibleAsync(new() { Timeout = (float)TimeSpan.FromSeconds(120).TotalMilliseconds });
        Assert.Equal(to, await HostNumberOfAsync(Tools));

        // Its screen, through noVNC, from its new host.
        await VmUnderHost(page, target, Tools).Locator(".tree-row").First.ClickAsync();
        await page.GetByRole(AriaRole.Tab, new() { Name = "Console" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Graphical console" }).ClickAsync();
        var screen = page.GetByRole(AriaRole.Application, new() { Name = $"Graphical console of {Tools}" });
        await Assertions.Expect(screen.Locator("canvas")).ToBeVisibleAsync(new() { Timeout = Patience });
        await Assertions.Expect(page.Locator(".console-state")).ToHaveTextAsync("Connected", new() { Timeout = Patience });

        // Live charts of the host it runs on, from that host's rrd_updates.
        await TreeItem(page, target).Locator(".tree-row").First.ClickAsync();
        await page.GetByRole(AriaRole.Tab, new() { Name = "Performance" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Tabpanel).GetByRole(AriaRole.Img).First).ToBeVisibleAsync(new() { Timeout = Patience });

        // Keyboard only: into the tree, down its items, Enter shows the item.
        await TreeItem(page, "lab-host2").Locator(".tree-row").First.ClickAsync();
        await page.Keyboard.PressAsync("ArrowDown");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#selection-title")).Not.ToHaveTextAsync("lab-host2");

        // The master (lab-host1, which served the page) loses power: the page says so, finds the new master by itself
        // and shows lab-host1 dead.
        Assert.NotEqual(1, await HostNumberOfAsync(Tools));
        AssertNoBrowserErrors();
        _excused.Add(page);
        await _lab.LabAsync("pull-plug", "1");
        var banner = page.GetByRole(AriaRole.Status);
        await Assertions.Expect(banner).ToContainTextAsync("Reconnected to the new master", new() { Timeout = (float)TimeSpan.FromSeconds(60).TotalMilliseconds });
        await Assertions.Expect(TreeItem(page, "lab-host1")).ToHaveAttributeAsync("data-status", new System.Text.RegularExpressions.Regex("host dead"),
            new() { Timeout = (float)TimeSpan.FromSeconds(60).TotalMilliseconds });
        await ScreenshotAsync(page, "console-failover");

        // A phone-sized window: the tree folds away behind a button, nothing is wider than the screen.
        _servedBy = 1;
        var phone = await OpenAsync(390, 844);
        await LogInAsync(phone);
        var width = await phone.EvaluateAsync<int>("() => document.scrollingElement.scrollWidth");
        Assert.True(width <= 390, $"the page is {width} px wide on a 390 px screen");

        AssertNoBrowserErrors();
    }

    /// <summary>
    /// The lab's directory users: rory (read-only) sees the pool but no action, console or New VM; olivia (vm-operator)
    /// may shut VMs down and use their consoles, but is offered neither migration nor maintenance mode.
    /// </summary>
    private async Task TheDirectorysUsersSeeWhatTheirRolesAllowAsync()
    {
        var reader = await OpenAsync(1280, 800);
        await LogInAsync(reader, "rory");
        await VmUnderHost(reader, "lab-host1", Tools).Locator(".tree-row").First.ClickAsync();
        await Assertions.Expect(reader.GetByRole(AriaRole.Tabpanel)).ToContainTextAsync("Running", new() { Timeout = Patience });
        await Assertions.Expect(reader.GetByRole(AriaRole.Button, new() { Name = "Shut down", Exact = true })).ToBeHiddenAsync();
        await Assertions.Expect(reader.GetByRole(AriaRole.Button, new() { Name = "Migrate to…" })).ToBeHiddenAsync();
        await Assertions.Expect(reader.GetByRole(AriaRole.Button, new() { Name = "New VM", Exact = true })).ToBeHiddenAsync();
        await reader.GetByRole(AriaRole.Tab, new() { Name = "Console" }).ClickAsync();
        await Assertions.Expect(reader.GetByRole(AriaRole.Tabpanel)).ToContainTextAsync("Your role does not include", new() { Timeout = Patience });
        await TreeItem(reader, "lab-host1").Locator(".tree-row").First.ClickAsync(new() { Button = MouseButton.Right });
        await Assertions.Expect(reader.GetByRole(AriaRole.Menuitem, new() { Name = "Enter Maintenance Mode" })).ToHaveCountAsync(0);
        await ScreenshotAsync(reader, "console-read-only");
        await reader.Context.CloseAsync();

        var operatorPage = await OpenAsync(1280, 800);
        await LogInAsync(operatorPage, "olivia");
        await VmUnderHost(operatorPage, "lab-host1", Tools).Locator(".tree-row").First.ClickAsync();
        await Assertions.Expect(operatorPage.GetByRole(AriaRole.Button, new() { Name = "Shut down", Exact = true })).ToBeVisibleAsync(new() { Timeout = Patience });
        await Assertions.Expect(operatorPage.GetByRole(AriaRole.Button, new() { Name = "Migrate to…" })).ToBeHiddenAsync();
        await operatorPage.GetByRole(AriaRole.Tab, new() { Name = "Console" }).ClickAsync();
        await Assertions.Expect(operatorPage.GetByRole(AriaRole.Log, new() { Name = $"Serial console of {Tools}" })).ToBeVisibleAsync(new() { Timeout = Patience });
        await TreeItem(operatorPage, "lab-host1").Locator(".tree-row").First.ClickAsync(new() { Button = MouseButton.Right });
        await Assertions.Expect(operatorPage.GetByRole(AriaRole.Menuitem, new() { Name = "New VM…" })).ToHaveCountAsync(0);
        await Assertions.Expect(operatorPage.GetByRole(AriaRole.Menuitem, new() { Name = "Enter Maintenance Mode" })).ToHaveCountAsync(0);
        await operatorPage.Context.CloseAsync();
    }

    private void AssertNoBrowserErrors()
    {
        lock (_browserErrors)
        {
            Assert.True(_browserErrors.Count == 0, "browser errors:\n" + string.Join('\n', _browserErrors));
        }
    }

    private async Task<int> HostNumberOfAsync(string vm)
    {
        var uuid = await _lab.Xe("vm-list", $"name-label={vm}", "--minimal");
        var host = await _lab.Xe("vm-param-get", $"uuid={uuid}", "param-name=resident-on");
        var name = await _lab.Xe("host-param-get", $"uuid={host}", "param-name=name-label");
        return int.Parse(name["lab-host".Length..], CultureInfo.InvariantCulture);
    }
}
