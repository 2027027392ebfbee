namespace Corral.Packaging.Tests;

/// <summary>One package for every test of this project: building it is the slow part.</summary>
[CollectionDefinition(Name)]
public sealed class PackageCollection : ICollectionFixture<DebianPackage>
{
    public const string Name = "Debian package";
}
