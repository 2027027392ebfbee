using Corral.ModelGen;

// tools/Corral.ModelGen extract <xenapi.json> <constants.ml> <source text> <idl .ml files...>   -> datamodel/xapi-datamodel.json, xapi-rbac.json
// tools/Corral.ModelGen generate                                                                -> src/Corral.Model/Generated
var root = RepositoryRoot.Find(AppContext.BaseDirectory) ?? RepositoryRoot.Find(Directory.GetCurrentDirectory())
    ?? throw new InvalidOperationException("run inside the Corral repository");
switch (args.FirstOrDefault())
{
    case "extract" when args.Length >= 5:
        var facts = XapiExtractor.Extract(args[1], args[4..], args[2], args[3], Console.Out);
        await File.WriteAllTextAsync(RepositoryRoot.FactsPath(root), facts.ToJson());
        Console.WriteLine($"wrote {RepositoryRoot.FactsPath(root)}");
        var rbacSource = args[3].Split(": ", 2)[0] + ": ocaml/idl/datamodel*.ml read as ocaml/idl/ocaml_backend/gen_rbac.ml reads it, ocaml/xapi-consts/constants.ml";
        var rbac = OcamlRbac.Extract(args[4..], args[2], rbacSource, facts, Console.Out);
        await File.WriteAllTextAsync(RepositoryRoot.RbacPath(root), rbac.ToJson());
        Console.WriteLine($"wrote {RepositoryRoot.RbacPath(root)}");
        return 0;
    case "generate":
        var files = ModelGenerator.Generate(DatamodelFacts.Load(RepositoryRoot.FactsPath(root)), RbacFacts.Load(RepositoryRoot.RbacPath(root)));
        var output = RepositoryRoot.GeneratedPath(root);
        Directory.CreateDirectory(output);
        foreach (var stale in Directory.GetFiles(output, "*.g.cs").Where(f => !files.ContainsKey(Path.GetFileName(f))))
        {
            File.Delete(stale);
        }

        foreach (var (name, text) in files)
        {
            await File.WriteAllTextAsync(Path.Combine(output, name), text);
        }

        Console.WriteLine($"wrote {files.Count} files to {output}");
        return 0;
    default:
        Console.Error.WriteLine("usage: Corral.ModelGen extract <xenapi.json> <constants.ml> <source> <datamodel*.ml...> | generate");
        return 2;
}
