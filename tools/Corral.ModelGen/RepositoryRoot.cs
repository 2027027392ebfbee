namespace Corral.ModelGen;

/// <summary>Where the generator's input and output live in the repository.</summary>
public static class RepositoryRoot
{
    public static string? Find(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Corral.slnx")))
            {
                return dir.FullName;
            }
        }

        return null;
    }

    public static string FactsPath(string root) => Path.Combine(root, "datamodel", "xapi-datamodel.json");

    public static string RbacPath(string root) => Path.Combine(root, "datamodel", "xapi-rbac.json");

    public static string GeneratedPath(string root) => Path.Combine(root, "src", "Corral.Model", "Generated");
}
