using System.Globalization;
using System.Text;
using RabbitMQ.Client;

namespace Envio.Messaging;

/// <summary>
/// The RabbitMQ version a connection reached, as the broker announces it. Envio supports RabbitMQ 3.10 to 3.13 and
/// 4.0 onwards; where they behave differently (quorum queues' default delivery limit from 4.0), the topology asks here.
/// </summary>
public readonly record struct BrokerVersion(int Major, int Minor)
{
    /// <summary>From 4.0, quorum queues have a delivery limit (20) unless one is set, and drop what exceeds it.</summary>
    public bool HasDefaultDeliveryLimit => Major >= 4;

    public static BrokerVersion Of(IConnection connection) =>
        Parse(connection.ServerProperties?.TryGetValue("version", out var value) == true
            ? value switch { byte[] bytes => Encoding.UTF8.GetString(bytes), string text => text, _ => null }
            : null);

    /// <summary>
    /// "3.10.8", "4.3.0", "4.1.0-rc.1". An unreadable version counts as the newest behaviour known (4.x): its
    /// settings are the ones that keep messages there, and a 3.x broker always announces its version.
    /// </summary>
    public static BrokerVersion Parse(string? version)
    {
        var parts = (version ?? "").Split('.', '-');
        return parts.Length >= 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            ? new BrokerVersion(major, minor)
            : new BrokerVersion(4, 0);
    }

    public override string ToString() => $"{Major}.{Minor}";
}
