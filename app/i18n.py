"""Messages in Korean (the default, the seed's wording) and English (`Accept-Language: en`)."""

import re

from flask import has_request_context, request

LANGUAGES = ("ko", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    # success messages
    "ok": ("요청이 성공적으로 처리되었습니다", "The request was processed successfully."),
    "backups_registered": (
        "백업 작업이 성공적으로 등록되었습니다",
        "Backup jobs were registered successfully.",
    ),
    "backups_partially_registered": (
        "일부 백업 작업만 등록되었습니다",
        "Some backup jobs were registered; others failed.",
    ),
    "backups_none_registered": (
        "백업 작업을 하나도 등록하지 못했습니다",
        "No backup job could be registered.",
    ),
    "backup_updated": ("백업 작업이 수정되었습니다", "The backup job was updated."),
    "backup_deleted": ("백업 작업이 삭제되었습니다", "The backup job was deleted."),
    "created": ("생성되었습니다", "Created."),
    "deleted": ("삭제되었습니다", "Deleted."),
    "token_issued": ("토큰이 발급되었습니다", "A token was issued."),
    "token_revoked": ("토큰이 폐기되었습니다", "The token was revoked."),
    "healthy": ("모든 구성 요소가 정상입니다", "All components are reachable."),
    # errors by HTTP status
    "bad_request": ("잘못된 요청입니다", "The request is not valid."),
    "malformed_json": ("요청 본문이 올바른 JSON이 아닙니다", "The request body is not valid JSON."),
    "unsupported_media_type": (
        "요청 본문은 application/json 형식이어야 합니다",
        "The request body must be sent as application/json.",
    ),
    "payload_too_large": (
        "요청 본문이 허용된 크기({limit} 바이트)를 넘었습니다",
        "The request body is larger than the allowed {limit} bytes.",
    ),
    "validation_failed": ("입력값 검증에 실패했습니다", "The request has invalid fields."),
    "not_found": ("요청한 경로를 찾을 수 없습니다", "The requested URL was not found."),
    "method_not_allowed": ("허용되지 않는 메서드입니다", "The method is not allowed for this URL."),
    "unauthorized": ("인증 토큰이 없거나 유효하지 않습니다", "A valid bearer token is required."),
    "token_expired": ("인증 토큰이 만료되었습니다", "The bearer token has expired."),
    "bad_credentials": (
        "이메일 또는 비밀번호가 올바르지 않습니다",
        "The e-mail or password is not correct.",
    ),
    "forbidden": (
        "이 작업을 수행할 권한이 없습니다 (필요한 역할: {role})",
        "Your role may not do this (needs {role}).",
    ),
    "conflict": ("요청이 현재 상태와 충돌합니다", "The request conflicts with the current state."),
    "service_unavailable": (
        "{component}에 연결할 수 없습니다. 잠시 후 다시 시도하세요",
        "The {component} is unavailable; try again later.",
    ),
    "unhealthy": ("일부 구성 요소에 연결할 수 없습니다", "Some components are unreachable."),
    "internal_error": ("서버 내부 오류가 발생했습니다", "An internal error occurred."),
    # answered by gunicorn itself (gunicorn.conf.py), before the app sees the request
    "uri_too_long": (
        "요청 URL이 너무 깁니다({limit} 바이트까지)",
        "The request URL is too long (at most {limit} bytes).",
    ),
    "headers_too_large": (
        "요청 헤더가 너무 많거나 너무 큽니다(헤더 {count}개, 헤더 하나에 {size} 바이트까지)",
        "The request has too many or too large headers (at most {count}, of {size} bytes each).",
    ),
    "malformed_request": (
        "HTTP 요청 형식이 올바르지 않습니다",
        "The request is not well-formed HTTP.",
    ),
    "not_implemented": (
        "지원하지 않는 요청 방식입니다",
        "The server does not support this kind of request.",
    ),
    # lookups
    "center_not_found": ("센터 '{ref}'을(를) 찾을 수 없습니다", "Center '{ref}' was not found."),
    "server_not_found": ("서버 '{ref}'을(를) 찾을 수 없습니다", "Server '{ref}' was not found."),
    "server_not_in_center": (
        "서버 '{ref}'을(를) 센터 '{center}'에서 찾을 수 없습니다",
        "Server '{ref}' was not found in center '{center}'.",
    ),
    "repository_not_found": (
        "리포지토리 '{ref}'을(를) 찾을 수 없습니다",
        "Repository '{ref}' was not found.",
    ),
    "user_not_found": ("사용자 '{ref}'을(를) 찾을 수 없습니다", "User '{ref}' was not found."),
    "job_not_found": (
        "백업 작업 '{ref}'을(를) 찾을 수 없습니다",
        "Backup job '{ref}' was not found.",
    ),
    "job_name_ambiguous": (
        "작업명 '{ref}'에 해당하는 작업이 {count}개 있습니다. ID로 지정하세요",
        "{count} jobs are named '{ref}'; address the job by its id.",
    ),
    "center_exists": ("센터 '{name}'이(가) 이미 있습니다", "Center '{name}' already exists."),
    "server_exists": ("서버 '{name}'이(가) 이미 있습니다", "Server '{name}' already exists."),
    "repository_exists": (
        "이 센터에 경로 '{path}'의 리포지토리가 이미 있습니다",
        "A repository with path '{path}' already exists in this center.",
    ),
    "user_exists": ("사용자 '{email}'이(가) 이미 있습니다", "User '{email}' already exists."),
    "server_has_jobs": (
        "서버 '{name}'에 백업 작업 {count}개가 있어 삭제할 수 없습니다",
        "Server '{name}' still has {count} backup jobs; delete them first.",
    ),
    "repository_has_jobs": (
        "리포지토리 {ref}을(를) 사용하는 백업 작업 {count}개가 있어 삭제할 수 없습니다",
        "Repository {ref} is used by {count} backup jobs; delete them first.",
    ),
    # field rules
    "repository_type_mismatch": (
        "리포지토리 {ref}의 타입은 '{stored}'입니다",
        "Repository {ref} has type '{stored}'.",
    ),
    "repository_path_mismatch": (
        "리포지토리 {ref}의 경로는 '{stored}'입니다",
        "Repository {ref} has path '{stored}'.",
    ),
    "repository_other_center": (
        "리포지토리 {ref}은(는) 센터 '{center}'에 속해 있습니다",
        "Repository {ref} belongs to center '{center}'.",
    ),
    "path_not_absolute": ("절대 경로여야 합니다", "Must be an absolute path."),
    "path_has_dotdot": ("'..'을 포함할 수 없습니다", "Must not contain '..'."),
    "path_outside_roots": (
        "허용된 경로({roots}) 아래에 있어야 합니다",
        "Must lie under one of the allowed roots ({roots}).",
    ),
    "partition_list_empty": (
        "excludePartition을 적용한 뒤 남은 파티션이 없습니다",
        "No partition is left after excludePartition.",
    ),
    "cron_field_count": (
        "cron 표현식은 다섯 개의 필드(분 시 일 월 요일)여야 합니다",
        "A cron expression has five fields (minute hour day month weekday).",
    ),
    "cron_invalid": (
        "올바른 cron 표현식이 아닙니다: '{expression}'",
        "Not a valid cron expression: '{expression}'.",
    ),
    "cron_unknown_alias": (
        "알 수 없는 별칭 '{alias}'입니다. @hourly, @daily, @weekly, @monthly 중 하나여야 합니다",
        "Unknown alias '{alias}'; use one of @hourly, @daily, @weekly, @monthly.",
    ),
    "cron_out_of_range": (
        "{field} 필드의 값 '{value}'이(가) 허용 범위({range})를 벗어났습니다",
        "The {field} field's value '{value}' is outside its range {range}.",
    ),
    "cron_bad_value": (
        "{field} 필드의 값 '{value}'을(를) 읽을 수 없습니다 (허용 범위 {range})",
        "The {field} field's value '{value}' is not valid (range {range}).",
    ),
    "cron_field_minute": ("분", "minute"),
    "cron_field_hour": ("시", "hour"),
    "cron_field_day": ("일", "day-of-month"),
    "cron_field_month": ("월", "month"),
    "cron_field_weekday": ("요일", "day-of-week"),
    "cron_rule_hourly": (
        "매시 정해진 한 분에 실행되어야 합니다 (예: '0 * * * *')",
        "one minute of every hour (e.g. '0 * * * *')",
    ),
    "cron_rule_daily": (
        "매일 정해진 한 시각에 실행되어야 합니다 (예: '0 2 * * *')",
        "one time of every day (e.g. '0 2 * * *')",
    ),
    "cron_rule_weekly": (
        "매주 한 요일의 정해진 한 시각에 실행되어야 합니다 (예: '0 2 * * 1')",
        "one time on one weekday (e.g. '0 2 * * 1')",
    ),
    "cron_rule_monthly": (
        "매월 한 날짜의 정해진 한 시각에 실행되어야 합니다 (예: '0 2 1 * *')",
        "one time on one day of every month (e.g. '0 2 1 * *')",
    ),
    "cron_never_fires": (
        "이 cron 표현식은 실행 시각이 없습니다",
        "The cron expression never fires.",
    ),
    "bad_characters": (
        "NUL 문자나 짝이 없는 서러게이트는 쓸 수 없습니다",
        "NUL characters and unpaired surrogates are not allowed.",
    ),
    "cron_shape": (
        "'{type}' 스케줄에 맞지 않는 표현식입니다: {rule}",
        "The expression does not fit a '{type}' schedule: {rule}.",
    ),
    "once_invalid": (
        "ISO 8601 날짜-시간이어야 합니다 (예: 2030-01-31T02:00:00)",
        "Must be an ISO 8601 date-time (e.g. 2030-01-31T02:00:00).",
    ),
    "once_in_past": ("미래의 시각이어야 합니다", "Must be in the future."),
    "timezone_invalid": ("알 수 없는 시간대입니다: '{tz}'", "Unknown time zone: '{tz}'."),
    "email_list_invalid": (
        "올바른 이메일 주소가 아닙니다: '{value}'",
        "Not a valid e-mail address: '{value}'.",
    ),
    "name_invalid": (
        "이름은 앞뒤 공백이나 제어 문자를 포함할 수 없습니다",
        "Names may not have leading or trailing spaces or control characters.",
    ),
    "page_with_after": (
        "page와 after는 함께 쓸 수 없습니다: 둘 중 하나만 지정하세요",
        "Give either page or after, not both.",
    ),
    "no_fields": (
        "수정할 필드가 하나 이상 필요합니다",
        "At least one field to change is required.",
    ),
    # runs, recovery points and restores
    "job_started": ("백업 작업 스케줄이 활성화되었습니다", "The job's schedule is active."),
    "job_stopped": ("백업 작업 스케줄이 중지되었습니다", "The job's schedule is stopped."),
    "run_queued": ("백업 실행이 요청되었습니다", "The run was queued."),
    "restore_queued": ("복구가 요청되었습니다", "The restore was queued."),
    "schedule_has_no_future": (
        "이 스케줄에는 앞으로의 실행 시각이 없습니다",
        "The schedule has no fire time in the future.",
    ),
    "job_already_running": (
        "작업 {ref}의 실행이 이미 대기 중이거나 진행 중입니다",
        "A run of job {ref} is already queued or running.",
    ),
    "run_not_found": ("실행 '{ref}'을(를) 찾을 수 없습니다", "Run '{ref}' was not found."),
    "restore_not_found": ("복구 '{ref}'을(를) 찾을 수 없습니다", "Restore '{ref}' was not found."),
    "point_not_found": (
        "복구 지점 '{ref}'을(를) 찾을 수 없습니다",
        "Recovery point '{ref}' was not found.",
    ),
    "no_current_run": (
        "작업 {ref}에 진행 중인 실행이 없습니다",
        "Job {ref} has no run in progress.",
    ),
    # per-partition outcomes of POST /backups
    "partition_not_on_server": (
        "파티션 '{partition}'이(가) 서버 '{server}'에 없습니다",
        "Partition '{partition}' is not on server '{server}'.",
    ),
    "job_exists": (
        "서버 '{server}'의 파티션 '{partition}'에 작업명 '{name}'의 작업이 이미 있습니다",
        "A job named '{name}' already exists for partition '{partition}' of server '{server}'.",
    ),
    "agent_has_no_master_key": (
        "서버 '{server}'의 에이전트에 마스터 키(ZDM_MASTER_KEY)가 없어 암호화(aes256) 백업을 할 수 "
        "없습니다",
        "The agent of server '{server}' has no master key (ZDM_MASTER_KEY): it cannot make "
        "encrypted (aes256) backups.",
    ),
    "exclude_dir_on_block": (
        "excludeDir는 디렉터리 파티션에만 쓸 수 있습니다 ('{partition}'은(는) 블록 파티션입니다)",
        "excludeDir applies to directory partitions only; '{partition}' is a block partition.",
    ),
    # verification (SPEC "Trust")
    "verification_queued": (
        "저장소 검증이 에이전트에 요청되었습니다",
        "The verification was sent to an agent that uses the repository.",
    ),
    "verification_not_found": (
        "검증 {ref}을(를) 찾을 수 없습니다",
        "Verification {ref} does not exist.",
    ),
    "no_agent_for_repository": (
        "저장소 {ref}을(를) 사용하는 에이전트(서버)가 없어 검증할 수 없습니다",
        "No agent (server) uses repository {ref}, so nobody can verify it.",
    ),
    "repository_updated": ("저장소 설정이 변경되었습니다", "The repository was updated."),
    "restore_agent_has_no_key": (
        "복구 지점 {ref}은(는) 암호화되어 있는데 서버 '{server}'의 에이전트에 마스터 키"
        "(ZDM_MASTER_KEY)가 없어 복원할 수 없습니다",
        "Recovery point {ref} is encrypted and the agent of server '{server}' has no master key "
        "(ZDM_MASTER_KEY); it cannot restore it.",
    ),
    "restore_key_mismatch": (
        "복구 지점 {ref}은(는) 마스터 키 {made_with}(으)로 암호화되었는데 서버 '{server}'의 "
        "에이전트는 다른 키({holds})를 갖고 있어 복원할 수 없습니다",
        "Recovery point {ref} was encrypted with master key {made_with}, but the agent of server "
        "'{server}' holds another key ({holds}); it cannot restore it.",
    ),
    "point_missing": (
        "복구 지점 {ref}의 파일이 저장소에 없어 복원할 수 없습니다",
        "Recovery point {ref} is missing from its repository and cannot be restored.",
    ),
    # access: login throttling, disabled users and revoked tokens
    "too_many_login_attempts": (
        "로그인 실패가 너무 많습니다. {seconds}초 후에 다시 시도하세요",
        "Too many failed logins; try again in {seconds} seconds.",
    ),
    "user_disabled": (
        "사용자가 비활성화되었고 모든 토큰이 폐기되었습니다",
        "The user is disabled and all of their tokens are revoked.",
    ),
    "user_enabled": ("사용자가 다시 활성화되었습니다", "The user is enabled again."),
    "tokens_revoked": (
        "사용자의 토큰 {count}개가 폐기되었습니다",
        "{count} tokens of the user were revoked.",
    ),
    "cannot_disable_self": (
        "자기 자신은 비활성화할 수 없습니다",
        "An admin cannot disable themself.",
    ),
    # inventory deletions refused because data still refers to the thing
    "server_has_points": (
        "서버 '{name}'의 복구 지점 {count}개가 남아 있어 삭제할 수 없습니다",
        "Server '{name}' still has {count} recovery points and cannot be deleted.",
    ),
    "server_has_restores": (
        "서버 '{name}'에 복구 기록 {count}개가 있어 삭제할 수 없습니다",
        "Server '{name}' has {count} restores on record and cannot be deleted.",
    ),
    "repository_has_points": (
        "리포지토리 {ref}에 복구 지점 {count}개가 남아 있어 삭제할 수 없습니다",
        "Repository {ref} still holds {count} recovery points and cannot be deleted.",
    ),
    # where a restore may write (app/services/restore_policy.py)
    "path_control_characters": (
        "제어 문자(NUL, 줄바꿈 등)를 포함할 수 없습니다",
        "Must not contain control characters (NUL, line breaks, ...).",
    ),
    "path_too_long": (
        "경로는 {max}자 이하, 경로의 각 이름은 {name_max}바이트 이하여야 합니다",
        "Must be at most {max} characters long, each name in it at most {name_max} bytes.",
    ),
    "restore_role": (
        "복구는 operator 또는 admin 역할만 요청할 수 있습니다 (요청한 사용자의 역할: {role})",
        "Only an operator or admin may restore; the requester's role is {role}.",
    ),
    "restore_in_place_admin_only": (
        "파티션 '{partition}'에 제자리 복구는 admin만 할 수 있습니다",
        "Only an admin may restore onto partition {partition} in place.",
    ),
    "restore_in_place_needs_overwrite": (
        "파티션 '{partition}'에 제자리 복구하면 데이터가 덮어써집니다. overwrite를 true로 지정하세요",
        "Restoring onto partition {partition} in place replaces its data: set overwrite to true.",
    ),
    "restore_partition_busy": (
        "파티션 '{partition}'의 백업 실행이나 복구가 대기 중이거나 진행 중입니다. 끝난 뒤 제자리 복구하세요",
        "A backup run or restore of partition {partition} is queued or running; restore onto "
        "it in place after it has ended.",
    ),
    "restore_partition_mounted": (
        "파티션 '{partition}'({device})이(가) 마운트되어 있거나 시스템이 사용 중입니다. 제자리 복구 전에 해제하세요",
        "Partition {partition} ({device}) is mounted or otherwise in use by the system; "
        "unmount it before restoring onto it in place.",
    ),
    "restore_target_system": (
        "복구 대상 '{target}'이(가) /proc, /sys, /dev와 겹칩니다. 그곳에는 이 서버의 파티션을 파티션 이름으로 지정할 때만 복구합니다",
        "Target {target} overlaps /proc, /sys or /dev; a restore writes there only onto a "
        "partition the server serves, named as the partition.",
    ),
    "restore_target_repository": (
        "복구 대상 '{target}'이(가) 리포지토리 '{repository}'와 겹칩니다. 복구는 리포지토리에 쓰지 않습니다",
        "Target {target} overlaps repository {repository}; a restore never writes into a "
        "repository.",
    ),
    "restore_target_database": (
        "복구 대상 '{target}'이(가) 서비스 데이터베이스 파일 '{database}'와 겹칩니다. 복구는 데이터베이스에 쓰지 않습니다",
        "Target {target} overlaps the service's database file {database}; a restore never "
        "writes there.",
    ),
    "restore_target_partition_source": (
        "복구 대상 '{target}'은(는) 파티션 '{partition}'의 원본입니다. 제자리 복구는 대상에 파티션 이름을 지정하세요 (admin, overwrite: true)",
        "Target {target} is where partition {partition} is served from; to restore onto it "
        "in place, name the partition as the target (admin, overwrite: true).",
    ),
    "restore_target_in_use": (
        "복구 대상 '{target}'이(가) 진행 중인 다른 복구의 대상 '{other}'와 겹칩니다",
        "Target {target} overlaps {other}, the target of another restore in progress.",
    ),
    "restore_target_outside_roots": (
        "복구 대상 '{target}'이(가) 복구 루트({roots}) 아래에 있지 않습니다. 새 파일이나 디렉터리는 복구 루트 아래에, 제자리 복구는 파티션 이름으로 지정하세요",
        "Target {target} is not under a restore root ({roots}); a restore writes a new file "
        "or directory under a restore root, or onto a served partition named as the partition.",
    ),
    "restore_target_symlink_escape": (
        "복구 대상 '{target}'이(가) 심볼릭 링크를 거쳐 복구 루트({roots}) 밖의 '{resolved}'(으)로 이어집니다",
        "Target {target} leads through a symbolic link to {resolved}, outside the restore "
        "roots ({roots}).",
    ),
    "restore_target_no_directory": (
        "복구 대상 '{target}'의 디렉터리가 에이전트에 없습니다",
        "The directory of target {target} does not exist on the agent.",
    ),
    "restore_target_exists": (
        "복구 대상 '{target}'이(가) 이미 있습니다. 바꾸려면 overwrite를 true로 지정하세요",
        "Target {target} already exists; set overwrite to true to replace it.",
    ),
    "restore_target_special": (
        "복구 대상 '{target}'은(는) 일반 파일이나 디렉터리가 아닙니다 (장치 등). 복구 루트 아래에서는 일반 파일과 디렉터리만 바꿉니다",
        "Target {target} is not a regular file or directory (a device, for instance); under "
        "a restore root a restore replaces only regular files and directories.",
    ),
    "restore_target_unsafe_directory": (
        "복구 대상 '{target}'으로 가는 디렉터리 '{directory}'를 root나 에이전트가 아닌 사용자가 바꿀 수 있습니다. 그런 사용자가 바꿀 수 없는 디렉터리에 복구하세요",
        "Directory {directory} on the way to target {target} can be changed by users other "
        "than root and the agent; restore into directories only they can change.",
    ),
}

# Marshmallow's own messages, as Korean, for `detail.validationErrors`.
_MARSHMALLOW_KO: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^Missing data for required field\.$"), "필수 필드입니다"),
    (re.compile(r"^Unknown field\.$"), "알 수 없는 필드입니다"),
    (re.compile(r"^Field may not be null\.$"), "null일 수 없습니다"),
    (re.compile(r"^Not a valid string\.$"), "문자열이어야 합니다"),
    (re.compile(r"^Not a valid integer\.$"), "정수여야 합니다"),
    (re.compile(r"^Not a valid boolean\.$"), "true 또는 false여야 합니다"),
    (re.compile(r"^Not a valid list\.$"), "배열이어야 합니다"),
    (re.compile(r"^Invalid input type\.$"), "잘못된 입력 타입입니다"),
    (re.compile(r"^Invalid type\.$"), "잘못된 입력 타입입니다"),
    (re.compile(r"^Not a valid email address\.$"), "올바른 이메일 주소가 아닙니다"),
    (re.compile(r"^Must be one of: (.*)\.$"), r"다음 중 하나여야 합니다: \1"),
    (
        re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$"),
        r"\1 이상 \2 이하여야 합니다",
    ),
    (re.compile(r"^Must be greater than or equal to (\S+)\.$"), r"\1 이상이어야 합니다"),
    (re.compile(r"^Must be less than or equal to (\S+)\.$"), r"\1 이하여야 합니다"),
    (re.compile(r"^Must be greater than (\S+)\.$"), r"\1보다 커야 합니다"),
    (re.compile(r"^Must be less than (\S+)\.$"), r"\1보다 작아야 합니다"),
    (re.compile(r"^Length must be (\d+)\.$"), r"길이는 \1이어야 합니다"),
    (re.compile(r"^Invalid value\.$"), "올바른 값이 아닙니다"),
    (re.compile(r"^Not a valid utf-8 string\.$"), "올바른 UTF-8 문자열이 아닙니다"),
    (re.compile(r"^Not a valid number\.$"), "숫자여야 합니다"),
    (re.compile(r"^Number too large\.$"), "숫자가 너무 큽니다"),
    (re.compile(r"^Not a valid mapping type\.$"), "객체여야 합니다"),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), r"길이는 \1 이상이어야 합니다"),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), r"길이는 \1 이하여야 합니다"),
    (
        re.compile(r"^Length must be between (\d+) and (\d+)\.$"),
        r"길이는 \1에서 \2 사이여야 합니다",
    ),
]


def current_language() -> str:
    if not has_request_context():
        return "ko"
    lang = request.environ.get("zdm.lang")
    if lang is None:
        lang = request.accept_languages.best_match(LANGUAGES, default="ko")
        request.environ["zdm.lang"] = lang
    return lang


def t(key: str, **params) -> str:
    """The message `key` in the request's language."""
    ko, en = MESSAGES[key]
    template = en if current_language() == "en" else ko
    return template.format(**params)


def translate_validation_message(message: str) -> str:
    if current_language() == "en":
        return message
    for pattern, korean in _MARSHMALLOW_KO:
        if pattern.match(message):
            return pattern.sub(korean, message)
    return message
