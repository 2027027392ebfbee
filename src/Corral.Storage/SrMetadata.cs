using System.Text.Json;
using System.Text.Json.Serialization;

namespace Corral.Storage;

/// <summary>
/// What an SR keeps about itself on its own storage, next to its volumes: its identity and each VDI's uuid and names.
/// The pool database stays the one source of truth; this copy is what lets a pool that lost the records (SR.forget,
/// a new pool) introduce the SR again (SR.introduce, PBD.create, PBD.plug) and find its VDIs under their own uuids
/// and names, as xapi finds them in an SR's metadata.
/// </summary>
public sealed record SrMetadata(SrMetadataSr Sr, IReadOnlyList<SrMetadataVdi> Vdis)
{
    /// <summary>The metadata of the VDI whose volume is <paramref name="location"/>, if recorded.</summary>
    public SrMetadataVdi? Find(string location) => Vdis.FirstOrDefault(v => v.Location == location);
}

public sealed record SrMetadataSr(string Uuid, string NameLabel, string NameDescription, string Type, string ContentType, bool Shared);

/// <param name="Location">The volume's file name in the SR's directory (the VDI's <c>location</c>).</param>
public sealed record SrMetadataVdi(
    string Location,
    string Uuid,
    string NameLabel,
    string NameDescription,
    string Type,
    bool Sharable,
    bool ReadOnly,
    IReadOnlyDictionary<string, string> OtherConfig);

/// <summary>The metadata file of an SR's directory (<c>.corral-sr.json</c>; a dot file, never taken for a volume).</summary>
public static class SrMetadataFile
{
    public const string FileName = ".corral-sr.json";

    /// <summary>The version of the layout; a later Corral reading an older file knows what it holds.</summary>
    private const int CurrentFormat = 1;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    public static string PathIn(string directory) => Path.Combine(directory, FileName);

    /// <summary>The SR's metadata, or null when the directory holds none.</summary>
    /// <exception cref="InvalidDataException">The file is there but unreadable.</exception>
    public static async Task<SrMetadata?> ReadAsync(string directory, CancellationToken cancellationToken)
    {
        var path = PathIn(directory);
        if (!File.Exists(path))
        {
            return null;
        }

        return Parse(await File.ReadAllTextAsync(path, cancellationToken), path);
    }

    /// <summary>Metadata from the text of a metadata file (read from <paramref name="where"/>, for the error).</summary>
    /// <exception cref="InvalidDataException">The text is not an SR's metadata.</exception>
    public static SrMetadata Parse(string text, string where)
    {
        try
        {
            var file = JsonSerializer.Deserialize<FileLayout>(text, Json);
            return file is { Format: >= 1, Sr: not null } ? new SrMetadata(file.Sr, file.Vdis ?? []) : throw new InvalidDataException($"{where} holds no SR");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{where} is not an SR's metadata: {ex.Message}", ex);
        }
    }

    /// <summary>The text of a metadata file holding <paramref name="metadata"/>.</summary>
    public static byte[] Serialize(SrMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        return JsonSerializer.SerializeToUtf8Bytes(new FileLayout(CurrentFormat, metadata.Sr, metadata.Vdis), Json);
    }

    /// <summary>Writes the metadata: a new file flushed to disk, then renamed over the old, so a crash leaves one or the other.</summary>
    public static async Task WriteAsync(string directory, SrMetadata metadata, CancellationToken cancellationToken)
    {
        var path = PathIn(directory);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, useAsync: true))
            {
                await JsonSerializer.SerializeAsync(stream, new FileLayout(CurrentFormat, metadata.Sr, metadata.Vdis), Json, cancellationToken);
                await stream.FlushAsync(cancellationToken);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    public static void Delete(string directory) => File.Delete(PathIn(directory));

    private sealed record FileLayout(
        int Format,
        SrMetadataSr? Sr,
        [property: JsonPropertyName("vdis")] IReadOnlyList<SrMetadataVdi>? Vdis);
}
