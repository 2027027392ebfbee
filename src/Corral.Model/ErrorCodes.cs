namespace Corral.Model;

/// <summary>XenAPI error codes Corral raises, with the parameter order of xapi's own definitions.</summary>
public static class ErrorCodes
{
    public const string SessionAuthenticationFailed = "SESSION_AUTHENTICATION_FAILED"; // user, message
    public const string SessionInvalid = "SESSION_INVALID"; // session ref
    public const string HandleInvalid = "HANDLE_INVALID"; // class, ref
    public const string UuidInvalid = "UUID_INVALID"; // class, uuid
    public const string MessageMethodUnknown = "MESSAGE_METHOD_UNKNOWN"; // method
    public const string MessageRemoved = "MESSAGE_REMOVED";
    public const string MessageParameterCountMismatch = "MESSAGE_PARAMETER_COUNT_MISMATCH"; // method, expected, received
    public const string FieldTypeError = "FIELD_TYPE_ERROR"; // field
    public const string InvalidValue = "INVALID_VALUE"; // field, value
    public const string MapDuplicateKey = "MAP_DUPLICATE_KEY"; // type, param name, uuid, key
    public const string ValueNotSupported = "VALUE_NOT_SUPPORTED"; // field, value, reason
    public const string OperationNotAllowed = "OPERATION_NOT_ALLOWED"; // reason
    public const string InternalError = "INTERNAL_ERROR"; // message
    public const string XmlRpcUnmarshalFailure = "XMLRPC_UNMARSHAL_FAILURE"; // got, expected
    public const string JsonRpcParseError = "JSONRPC_PARSE_ERROR";
    public const string EventsLost = "EVENTS_LOST";
    public const string EventFromTokenParseFailure = "EVENT_FROM_TOKEN_PARSE_FAILURE"; // token
    public const string SessionNotRegistered = "SESSION_NOT_REGISTERED"; // session ref
    public const string EventSubscriptionParseFailure = "EVENT_SUBSCRIPTION_PARSE_FAILURE"; // class

    public const string VmBadPowerState = "VM_BAD_POWER_STATE"; // vm, expected, actual
    public const string VtpmMaxAmountReached = "VTPM_MAX_AMOUNT_REACHED"; // amount
    public const string FeatureRestricted = "FEATURE_RESTRICTED"; // feature
    public const string VmIsTemplate = "VM_IS_TEMPLATE"; // vm
    public const string VmMissingPvDrivers = "VM_MISSING_PV_DRIVERS"; // vm
    public const string VmHasNoSuspendVdi = "VM_HAS_NO_SUSPEND_VDI";
    public const string VmRequiresSr = "VM_REQUIRES_SR"; // vm, sr
    public const string VmRequiresNetwork = "VM_REQUIRES_NETWORK"; // vm, network
    public const string VmIncompatibleWithThisHost = "VM_INCOMPATIBLE_WITH_THIS_HOST"; // vm, host, reason
    public const string VmShutdownTimeout = "VM_SHUTDOWN_TIMEOUT"; // vm, timeout
    public const string VmFailedShutdownAcknowledgment = "VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT"; // vm
    public const string VmNoEmptyCdVbd = "VM_NO_EMPTY_CD_VBD"; // vm
    public const string VmHasVbds = "VM_HAS_VBDS";
    public const string VmStartFailed = "VM_START_FAILED"; // vm, message (Corral: carries QEMU's reason)
    public const string VmMigrateFailed = "VM_MIGRATE_FAILED"; // vm, source, destination, message
    public const string HostNotEnoughFreeMemory = "HOST_NOT_ENOUGH_FREE_MEMORY"; // needed, available
    public const string HostOffline = "HOST_OFFLINE"; // host
    public const string NotSupportedDuringUpgrade = "NOT_SUPPORTED_DURING_UPGRADE";
    public const string HostDisabled = "HOST_DISABLED"; // host
    public const string HostIsSlave = "HOST_IS_SLAVE"; // master address
    public const string NoHostsAvailable = "NO_HOSTS_AVAILABLE";
    public const string OtherOperationInProgress = "OTHER_OPERATION_IN_PROGRESS"; // class, ref
    public const string HostNotDisabled = "HOST_NOT_DISABLED";
    public const string HostIsLive = "HOST_IS_LIVE"; // host
    public const string HostPowerOnModeDisabled = "HOST_POWER_ON_MODE_DISABLED";
    public const string CannotEvacuateHost = "CANNOT_EVACUATE_HOST"; // "code,param,...|code,..." per VM that cannot move

    public const string SrFull = "SR_FULL"; // requested, maximum
    public const string SrHasNoPbds = "SR_HAS_NO_PBDS";
    public const string ServerCertificateKeyInvalid = "SERVER_CERTIFICATE_KEY_INVALID";
    public const string TlsVerificationNotEnabledInPool = "TLS_VERIFICATION_NOT_ENABLED_IN_POOL";
    public const string ServerCertificateKeyAlgorithmNotSupported = "SERVER_CERTIFICATE_KEY_ALGORITHM_NOT_SUPPORTED"; // algorithm_oid
    public const string ServerCertificateKeyRsaLengthNotSupported = "SERVER_CERTIFICATE_KEY_RSA_LENGTH_NOT_SUPPORTED"; // length
    public const string ServerCertificateKeyRsaMultiNotSupported = "SERVER_CERTIFICATE_KEY_RSA_MULTI_NOT_SUPPORTED";
    public const string ServerCertificateInvalid = "SERVER_CERTIFICATE_INVALID";
    public const string ServerCertificateKeyMismatch = "SERVER_CERTIFICATE_KEY_MISMATCH";
    public const string ServerCertificateNotValidYet = "SERVER_CERTIFICATE_NOT_VALID_YET"; // now, not_before
    public const string ServerCertificateExpired = "SERVER_CERTIFICATE_EXPIRED"; // now, not_after
    public const string ServerCertificateSignatureNotSupported = "SERVER_CERTIFICATE_SIGNATURE_NOT_SUPPORTED";
    public const string ServerCertificateChainInvalid = "SERVER_CERTIFICATE_CHAIN_INVALID";
    public const string SrBackendFailure = "SR_BACKEND_FAILURE"; // code, stdout, stderr
    public const string SrOperationNotSupported = "SR_OPERATION_NOT_SUPPORTED"; // sr
    public const string SrUnknownDriver = "SR_UNKNOWN_DRIVER"; // type
    public const string SrNotEmpty = "SR_NOT_EMPTY";
    public const string VdiInUse = "VDI_IN_USE"; // vdi, operation
    public const string VdiIsNotIso = "VDI_IS_NOT_ISO"; // vdi, type
    public const string VdiTooSmall = "VDI_TOO_SMALL"; // vdi, minimum size
    public const string VdiNotAvailable = "VDI_NOT_AVAILABLE"; // vdi
    public const string MemoryConstraintViolationOrder = "MEMORY_CONSTRAINT_VIOLATION_ORDER";
    public const string VbdNotEmpty = "VBD_NOT_EMPTY"; // vbd
    public const string VbdIsEmpty = "VBD_IS_EMPTY"; // vbd
    public const string VbdNotRemovableMedia = "VBD_NOT_REMOVABLE_MEDIA"; // vbd
    public const string DeviceAlreadyExists = "DEVICE_ALREADY_EXISTS"; // device
    public const string TaskCancelled = "TASK_CANCELLED"; // task
    public const string OperationCancelled = "OPERATION_CANCELLED";
    public const string PermissionDenied = "PERMISSION_DENIED"; // message
    public const string ProvisionOnlyAllowedOnTemplate = "PROVISION_ONLY_ALLOWED_ON_TEMPLATE";
    public const string NotImplemented = "NOT_IMPLEMENTED"; // function

    // Subjects, roles and external authentication
    public const string SubjectAlreadyExists = "SUBJECT_ALREADY_EXISTS";
    public const string RoleNotFound = "ROLE_NOT_FOUND";
    public const string RoleAlreadyExists = "ROLE_ALREADY_EXISTS";
    public const string AuthIsDisabled = "AUTH_IS_DISABLED";
    public const string AuthUnknownType = "AUTH_UNKNOWN_TYPE"; // type
    public const string AuthServiceError = "AUTH_SERVICE_ERROR"; // message
    public const string SubjectCannotBeResolved = "SUBJECT_CANNOT_BE_RESOLVED";
    public const string SessionAuthorizationFailed = "SESSION_AUTHORIZATION_FAILED"; // username, msg
    public const string RbacPermissionDenied = "RBAC_PERMISSION_DENIED"; // permission, message
    public const string PoolAuthAlreadyEnabled = "POOL_AUTH_ALREADY_ENABLED"; // host
    public const string PoolAuthEnableFailed = "POOL_AUTH_ENABLE_FAILED"; // host, message
    public const string PoolAuthEnableFailedWrongCredentials = "POOL_AUTH_ENABLE_FAILED_WRONG_CREDENTIALS"; // host, message
    public const string PoolAuthEnableFailedUnavailable = "POOL_AUTH_ENABLE_FAILED_UNAVAILABLE"; // host, message
    public const string CertificateNameInvalid = "CERTIFICATE_NAME_INVALID"; // name
    public const string CertificateAlreadyExists = "CERTIFICATE_ALREADY_EXISTS"; // name
    public const string CertificateDoesNotExist = "CERTIFICATE_DOES_NOT_EXIST"; // name
    public const string CertificateCorrupt = "CERTIFICATE_CORRUPT"; // name
    public const string PoolAuthEnableFailedPermissionDenied = "POOL_AUTH_ENABLE_FAILED_PERMISSION_DENIED"; // host, message
    public const string PoolAuthEnableFailedDomainLookupFailed = "POOL_AUTH_ENABLE_FAILED_DOMAIN_LOOKUP_FAILED"; // host, message
    public const string PoolAuthEnableFailedInvalidOu = "POOL_AUTH_ENABLE_FAILED_INVALID_OU"; // host, message
    public const string PoolAuthDisableFailed = "POOL_AUTH_DISABLE_FAILED"; // host, message
    public const string PoolAuthDisableFailedWrongCredentials = "POOL_AUTH_DISABLE_FAILED_WRONG_CREDENTIALS"; // host, message
    public const string PoolAuthDisableFailedPermissionDenied = "POOL_AUTH_DISABLE_FAILED_PERMISSION_DENIED"; // host, message
    public const string LicenceRestriction = "LICENCE_RESTRICTION"; // feature (xapi spells it so)

    // Pool membership
    public const string JoiningHostCannotHaveRunningVms = "JOINING_HOST_CANNOT_HAVE_RUNNING_VMS";
    public const string JoiningHostCannotBeMasterOfOtherHosts = "JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS";
    public const string JoiningHostConnectionFailed = "JOINING_HOST_CONNECTION_FAILED";
    public const string JoiningHostServiceFailed = "JOINING_HOST_SERVICE_FAILED";
    public const string HaIsEnabled = "HA_IS_ENABLED";
    public const string CannotContactHost = "CANNOT_CONTACT_HOST"; // host
    public const string HaNotEnabled = "HA_NOT_ENABLED";
    public const string HaTooFewHosts = "HA_TOO_FEW_HOSTS";
    public const string HaOperationWouldBreakFailoverPlan = "HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN";
    public const string HaConstraintViolationSrNotShared = "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED"; // SR
    public const string HaHostCannotAccessStatefile = "HA_HOST_CANNOT_ACCESS_STATEFILE";
    public const string HaLostStatefile = "HA_LOST_STATEFILE";
    public const string HostInEmergencyMode = "HOST_IN_EMERGENCY_MODE";

    // Device hot-plug, PBDs and SR records
    public const string DeviceAlreadyAttached = "DEVICE_ALREADY_ATTACHED"; // device
    public const string DeviceAlreadyDetached = "DEVICE_ALREADY_DETACHED"; // device
    public const string DeviceDetachRejected = "DEVICE_DETACH_REJECTED"; // class, ref, message
    public const string InvalidDevice = "INVALID_DEVICE"; // device
    public const string VbdNotUnpluggable = "VBD_NOT_UNPLUGGABLE"; // vbd
    public const string VbdCdsMustBeReadonly = "VBD_CDS_MUST_BE_READONLY";
    public const string DiskVbdMustBeReadwriteForHvm = "DISK_VBD_MUST_BE_READWRITE_FOR_HVM"; // vbd
    public const string VdiReadonly = "VDI_READONLY"; // vdi
    public const string VdiIncompatibleType = "VDI_INCOMPATIBLE_TYPE"; // vdi, type
    public const string MacInvalid = "MAC_INVALID"; // mac
    public const string SrHasPbd = "SR_HAS_PBD"; // sr
    public const string SrUuidExists = "SR_UUID_EXISTS"; // uuid
    public const string SrNotSharable = "SR_NOT_SHARABLE"; // sr, host
    public const string PbdExists = "PBD_EXISTS"; // sr, host, pbd
    public const string SrIndestructible = "SR_INDESTRUCTIBLE"; // sr

    // VM export and import (XVA)
    public const string ImportError = "IMPORT_ERROR"; // message
    public const string ImportErrorGeneric = "IMPORT_ERROR_GENERIC"; // message
    public const string ImportErrorPrematureEof = "IMPORT_ERROR_PREMATURE_EOF";
    public const string ImportErrorSomeChecksumsFailed = "IMPORT_ERROR_SOME_CHECKSUMS_FAILED";
    public const string ImportErrorUnexpectedFile = "IMPORT_ERROR_UNEXPECTED_FILE"; // expected, actual
    public const string ImportErrorFailedToFindObject = "IMPORT_ERROR_FAILED_TO_FIND_OBJECT"; // id
    public const string ImportIncompatibleVersion = "IMPORT_INCOMPATIBLE_VERSION";
    public const string DefaultSrNotFound = "DEFAULT_SR_NOT_FOUND"; // sr
}
