using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Corral.Storage.Iscsi;

/// <summary>One designator of a LUN's device identification page (VPD 0x83), as SPC defines it.</summary>
/// <param name="Type">1 T10 vendor ID, 2 EUI-64, 3 NAA, 8 SCSI name string...</param>
/// <param name="CodeSet">1 binary, 2 ASCII, 3 UTF-8.</param>
/// <param name="Association">0 the logical unit, 1 the target port, 2 the target device.</param>
public sealed record ScsiDesignator(int Type, int CodeSet, int Association, byte[] Value)
{
    public const int T10Vendor = 1, Eui64 = 2, Naa = 3, VendorSpecific = 0;
    private const int Binary = 1;

    /// <summary>
    /// The SCSIid XenServer shows for the LUN: what udev's <c>scsi_id -g</c> makes of its designators, which SM's
    /// lvmoiscsi reads. The first of, in this order, among the logical unit's designators: NAA IEEE registered extended
    /// (NAA 6), NAA IEEE registered (5), any NAA, EUI-64, T10 vendor ID, vendor specific; written as the designator
    /// type's hex digit followed by the value, binary values in lower-case hex, text with its runs of white space as one
    /// underscore (a tgt LUN's NAA 6 designator gives <c>360000000000000000e00000000010001</c>, its T10 one
    /// <c>1IET_00010001</c>). Empty when the LUN has none of them.
    /// </summary>
    public static string ScsiIdOf(IReadOnlyList<ScsiDesignator> designators)
    {
        ArgumentNullException.ThrowIfNull(designators);
        var unit = designators.Where(d => d.Association == 0 && d.Value.Length > 0).ToList();
        Func<ScsiDesignator, bool>[] order =
        [
            d => d.Type == Naa && d.Value[0] >> 4 == 6,
            d => d.Type == Naa && d.Value[0] >> 4 == 5,
            d => d.Type == Naa,
            d => d.Type == Eui64,
            d => d.Type == T10Vendor,
            d => d.Type == VendorSpecific,
        ];
        foreach (var wanted in order)
        {
            foreach (var codeSet in new[] { Binary, 2 })
            {
                if (unit.FirstOrDefault(d => wanted(d) && (d.CodeSet == Binary) == (codeSet == Binary)) is { } found)
                {
                    return found.Type.ToString("x", CultureInfo.InvariantCulture) + found.Text();
                }
            }
        }

        return "";
    }

    private string Text() =>
        CodeSet == Binary
            ? Convert.ToHexStringLower(Value)
            : string.Join('_', Encoding.UTF8.GetString(Value).TrimEnd('\0').Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    /// <summary>
    /// Reads libiscsi's unmarshalled device identification page (<c>struct scsi_inquiry_device_identification</c>):
    /// its list of <c>struct scsi_inquiry_device_designator</c> (next, protocol identifier, code set, PIV,
    /// association, designator type, length, value), as libiscsi.so.7 lays them out on 64-bit Linux.
    /// </summary>
    internal static IReadOnlyList<ScsiDesignator> ReadAll(IntPtr identification)
    {
        var designators = new List<ScsiDesignator>();
        for (var d = Marshal.ReadIntPtr(identification, 16); d != IntPtr.Zero && designators.Count < 64; d = Marshal.ReadIntPtr(d, 0))
        {
            var length = Marshal.ReadInt32(d, 28);
            var value = new byte[Math.Clamp(length, 0, 256)];
            if (value.Length > 0)
            {
                Marshal.Copy(Marshal.ReadIntPtr(d, 32), value, 0, value.Length);
            }

            designators.Add(new ScsiDesignator(Marshal.ReadInt32(d, 24), Marshal.ReadInt32(d, 12), Marshal.ReadInt32(d, 20), value));
        }

        return designators;
    }
}
