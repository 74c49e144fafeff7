//! The server's one error type and its one mapping to HTTP.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` sets the status and keeps the error in the
//! response's extensions, and the outer middleware ([`crate::middleware`]) renders it as
//! `application/problem+json` (RFC 9457) in the request's language with the request id, since
//! only it knows both. Input problems are never 500s: every [`EngineError`] that is about the
//! input maps to a 4xx here.
//!
//! Status choices: an image over the pixel limit is `413` (it is too large, like a file over
//! the byte limit), a corrupt or empty image is `422`, a bad option value is `400`, a language
//! the loaded model cannot caption in is `422`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use takarir_engine::EngineError;
use utoipa::ToSchema;

use crate::i18n::Lang;

/// Everything a request can fail with.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// An option has a value outside its range or vocabulary.
    InvalidOption {
        /// Option name.
        name: String,
        /// What was given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The loaded model cannot caption in this language.
    LanguageNotSupported {
        /// Requested language.
        lang: String,
        /// Languages the model has.
        supported: Vec<String>,
    },
    /// No image in the request.
    NoImage,
    /// More images than allowed in one request.
    TooManyFiles {
        /// The limit.
        max: usize,
    },
    /// The request body or a file is over the byte limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The image's declared size is over the pixel limit.
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Limit in megapixels.
        limit_megapixels: u32,
    },
    /// Decoding and preparing the image would take more memory than allowed (a very long or
    /// wide image, for instance).
    TooMuchMemory {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The per-image memory limit in MiB.
        limit_mb: u64,
    },
    /// Not an image format the engine decodes, or a request content type that is not one.
    UnsupportedMediaType,
    /// An empty file.
    EmptyImage,
    /// A recognised but corrupt or truncated image.
    CorruptImage,
    /// The request itself could not be read (malformed multipart, ...).
    MalformedRequest,
    /// The request body did not arrive in time.
    UploadTimeout,
    /// The client is over its rate limit.
    RateLimited {
        /// Seconds until a request will be admitted.
        retry_after: u64,
    },
    /// The inference queue is full.
    Busy {
        /// Seconds after which trying again makes sense.
        retry_after: u64,
    },
    /// No such route.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// A fault of the server or the model (details are logged, never sent).
    Internal,
    /// A ZIP entry whose name would escape the archive (`..`, absolute path).
    UnsafeArchivePath,
    /// A ZIP entry that is itself an archive.
    NestedArchive,
    /// Several entries of one ZIP archive have the same name, so which file is meant is unclear.
    DuplicateArchiveName,
    /// A batch job's input was lost before it could be captioned.
    JobInputLost,
    /// A webhook URL that is not an absolute http(s) URL.
    InvalidWebhook,
    /// A webhook URL naming a loopback, private or link-local address, which this server is
    /// not configured to call.
    WebhookNotPublic,
    /// The route needs a signed-in user or an API key, and the request has neither (or an
    /// unknown key).
    Unauthorized,
    /// Signed in, but not allowed: an API key without the scope, or not an admin.
    Forbidden {
        /// What is missing (a scope name, `admin`, `session`).
        missing: String,
    },
    /// A form or a cookie-authenticated API call without the right CSRF token.
    CsrfFailed,
    /// Wrong email or password (never says which).
    InvalidCredentials,
    /// The password does not meet the minimums.
    WeakPassword {
        /// Which rule: `too_short`, `contains_email`, `common`.
        rule: &'static str,
    },
    /// The email address is already taken.
    EmailTaken,
    /// This server does not take new accounts (`signups_allowed = false`).
    SignupsClosed,
    /// The email address is not valid.
    InvalidEmail,
    /// Too many failed sign-ins for this account or from this client.
    TooManyAttempts {
        /// Seconds until a sign-in is admitted again.
        retry_after: u64,
    },
    /// An email or export link that is unknown, used or expired.
    InvalidToken,
    /// The export a link names is still being made.
    ExportPending,
    /// The export a link names could not be made.
    ExportFailed,
    /// Turning history off while entries exist needs a decision: keep or delete them.
    HistoryDecisionRequired,
    /// Staff access to a user's data needs a stated reason.
    ReasonRequired,
    /// Text reading was asked for but this server has no text model (or it failed to load;
    /// the cause is logged).
    TextUnavailable,
}

/// Seconds a client is asked to wait before trying a pending export's link again.
const EXPORT_RETRY_SECONDS: u64 = 5;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary, in the request's language.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong with this request, in the request's language.
    pub detail: String,
    /// Stable machine-readable code (`invalid_option`, `payload_too_large`, ...).
    pub code: String,
    /// The request's id (also in the `X-Request-Id` header).
    pub request_id: String,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidOption { .. }
            | NoImage
            | TooManyFiles { .. }
            | MalformedRequest
            | InvalidWebhook
            | WebhookNotPublic => StatusCode::BAD_REQUEST,
            LanguageNotSupported { .. }
            | EmptyImage
            | CorruptImage
            | UnsafeArchivePath
            | NestedArchive
            | DuplicateArchiveName => StatusCode::UNPROCESSABLE_ENTITY,
            JobInputLost => StatusCode::INTERNAL_SERVER_ERROR,
            PayloadTooLarge { .. } | TooManyPixels { .. } | TooMuchMemory { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            UploadTimeout => StatusCode::REQUEST_TIMEOUT,
            Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Unauthorized | InvalidCredentials => StatusCode::UNAUTHORIZED,
            Forbidden { .. } | CsrfFailed | SignupsClosed => StatusCode::FORBIDDEN,
            WeakPassword { .. } | InvalidEmail => StatusCode::UNPROCESSABLE_ENTITY,
            EmailTaken | HistoryDecisionRequired | ExportPending => StatusCode::CONFLICT,
            TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            InvalidToken | ExportFailed => StatusCode::GONE,
            ReasonRequired => StatusCode::BAD_REQUEST,
            TextUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidOption { .. } => "invalid_option",
            LanguageNotSupported { .. } => "language_not_supported",
            NoImage => "no_image",
            TooManyFiles { .. } => "too_many_files",
            PayloadTooLarge { .. } => "payload_too_large",
            TooManyPixels { .. } | TooMuchMemory { .. } => "image_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            EmptyImage => "empty_image",
            CorruptImage => "corrupt_image",
            MalformedRequest => "malformed_request",
            RateLimited { .. } => "rate_limited",
            UploadTimeout => "upload_timeout",
            Busy { .. } => "busy",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Internal => "internal_error",
            UnsafeArchivePath => "unsafe_archive_path",
            NestedArchive => "nested_archive",
            DuplicateArchiveName => "duplicate_archive_name",
            JobInputLost => "job_input_lost",
            InvalidWebhook => "invalid_webhook",
            WebhookNotPublic => "webhook_not_public",
            Unauthorized => "unauthorized",
            Forbidden { .. } => "forbidden",
            CsrfFailed => "csrf_failed",
            InvalidCredentials => "invalid_credentials",
            WeakPassword { .. } => "weak_password",
            EmailTaken => "email_taken",
            SignupsClosed => "signups_closed",
            InvalidEmail => "invalid_email",
            TooManyAttempts { .. } => "too_many_attempts",
            InvalidToken => "invalid_token",
            ExportPending => "export_pending",
            ExportFailed => "export_failed",
            HistoryDecisionRequired => "history_decision_required",
            ReasonRequired => "reason_required",
            TextUnavailable => "text_unavailable",
        }
    }

    /// Seconds for a `Retry-After` header, where one applies.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after }
            | ApiError::Busy { retry_after }
            | ApiError::TooManyAttempts { retry_after } => Some(*retry_after),
            ApiError::ExportPending => Some(EXPORT_RETRY_SECONDS),
            _ => None,
        }
    }

    /// Title and detail in `lang`.
    pub fn messages(&self, lang: Lang) -> (String, String) {
        use ApiError::*;
        let (ti, te, di, de): (&str, &str, String, String) = match self {
            InvalidOption {
                name,
                value,
                expected,
            } => (
                "Opsi tidak valid",
                "Invalid option",
                format!("Nilai `{value}` untuk opsi `{name}` tidak valid; yang diterima: {expected}."),
                format!("The value `{value}` for option `{name}` is invalid; accepted: {expected}."),
            ),
            LanguageNotSupported { lang: l, supported } => (
                "Bahasa tidak didukung oleh model ini",
                "Language not supported by this model",
                format!(
                    "Model yang dimuat tidak dapat membuat takarir dalam bahasa `{l}`. Bahasa yang tersedia: {}.",
                    supported.join(", ")
                ),
                format!(
                    "The loaded model cannot caption in `{l}`. Available languages: {}.",
                    supported.join(", ")
                ),
            ),
            NoImage => (
                "Tidak ada gambar",
                "No image",
                "Permintaan tidak berisi gambar. Kirim berkas pada kolom `image`.".into(),
                "The request contains no image. Send a file in the `image` field.".into(),
            ),
            TooManyFiles { max } => (
                "Terlalu banyak berkas",
                "Too many files",
                format!("Paling banyak {max} gambar per permintaan."),
                format!("At most {max} images per request."),
            ),
            PayloadTooLarge { limit } => (
                "Berkas terlalu besar",
                "File too large",
                format!("Ukuran unggahan melebihi batas {} MB.", mb(*limit)),
                format!("The upload is over the {} MB limit.", mb(*limit)),
            ),
            TooManyPixels {
                width,
                height,
                limit_megapixels,
            } => (
                "Gambar terlalu besar",
                "Image too large",
                format!(
                    "Gambar berukuran {width}×{height} piksel, melebihi batas {limit_megapixels} megapiksel."
                ),
                format!(
                    "The image is {width}×{height} pixels, over the {limit_megapixels}-megapixel limit."
                ),
            ),
            TooMuchMemory {
                width,
                height,
                limit_mb,
            } => (
                "Gambar terlalu besar",
                "Image too large",
                format!(
                    "Gambar berukuran {width}×{height} piksel memerlukan lebih dari {limit_mb} MB memori untuk diproses. Perkecil atau potong gambar lalu coba lagi."
                ),
                format!(
                    "The image is {width}×{height} pixels and would need more than {limit_mb} MB of memory to process. Scale it down or crop it and try again."
                ),
            ),
            UnsupportedMediaType => (
                "Jenis berkas tidak didukung",
                "Unsupported file type",
                "Berkas ini bukan gambar yang didukung. Gunakan JPEG, PNG, WebP, GIF, BMP, atau TIFF.".into(),
                "This file is not a supported image. Use JPEG, PNG, WebP, GIF, BMP or TIFF.".into(),
            ),
            EmptyImage => (
                "Berkas kosong",
                "Empty file",
                "Berkas yang dikirim kosong.".into(),
                "The file sent is empty.".into(),
            ),
            CorruptImage => (
                "Gambar rusak",
                "Corrupt image",
                "Gambar tidak dapat dibaca: datanya rusak atau terpotong.".into(),
                "The image cannot be read: its data is corrupt or truncated.".into(),
            ),
            MalformedRequest => (
                "Permintaan tidak dapat dibaca",
                "Malformed request",
                "Isi permintaan tidak dapat dibaca. Kirim multipart/form-data atau gambar mentah dengan Content-Type gambar.".into(),
                "The request body cannot be read. Send multipart/form-data or a raw image with an image Content-Type.".into(),
            ),
            UploadTimeout => (
                "Unggahan terlalu lama",
                "Upload too slow",
                "Gambar tidak selesai diterima dalam batas waktu. Periksa koneksi Anda dan coba lagi.".into(),
                "The image did not arrive within the time limit. Check your connection and try again.".into(),
            ),
            RateLimited { retry_after } => (
                "Terlalu banyak permintaan",
                "Too many requests",
                format!("Anda mengirim terlalu banyak permintaan. Coba lagi dalam {retry_after} detik."),
                format!("You are sending too many requests. Try again in {retry_after} seconds."),
            ),
            Busy { retry_after } => (
                "Server sedang sibuk",
                "Server busy",
                format!("Antrean pemrosesan sedang penuh. Coba lagi dalam {retry_after} detik."),
                format!("The processing queue is full. Try again in {retry_after} seconds."),
            ),
            NotFound => (
                "Tidak ditemukan",
                "Not found",
                "Alamat ini tidak ada.".into(),
                "There is nothing at this address.".into(),
            ),
            MethodNotAllowed => (
                "Metode tidak diizinkan",
                "Method not allowed",
                "Alamat ini tidak menerima metode HTTP tersebut.".into(),
                "This address does not accept that HTTP method.".into(),
            ),
            Internal => (
                "Kesalahan server",
                "Server error",
                "Terjadi kesalahan di server. Sudah dicatat; silakan coba lagi.".into(),
                "Something went wrong on the server. It has been logged; please try again.".into(),
            ),
            UnsafeArchivePath => (
                "Nama berkas tidak aman",
                "Unsafe file name",
                "Nama berkas di dalam ZIP ini keluar dari folder arsip (`..` atau jalur absolut); berkas dilewati.".into(),
                "This file's name in the ZIP escapes the archive folder (`..` or an absolute path); it was skipped.".into(),
            ),
            NestedArchive => (
                "Arsip di dalam arsip",
                "Archive inside an archive",
                "ZIP di dalam ZIP tidak dibuka; kirim gambarnya langsung.".into(),
                "A ZIP inside a ZIP is not opened; send its images directly.".into(),
            ),
            DuplicateArchiveName => (
                "Nama berkas ganda dalam arsip",
                "Duplicate name in the archive",
                "Arsip ini memuat beberapa berkas dengan nama yang sama; tidak satu pun dari berkas itu diproses. Beri nama yang berbeda lalu kirim lagi.".into(),
                "The archive holds several files with this same name; none of them was processed. Give them different names and send them again.".into(),
            ),
            JobInputLost => (
                "Masukan hilang",
                "Input lost",
                "Gambar ini hilang dari penyimpanan sebelum diproses; kirim ulang.".into(),
                "This image was lost from storage before it was processed; send it again.".into(),
            ),
            InvalidWebhook => (
                "Webhook tidak valid",
                "Invalid webhook",
                "`webhook_url` harus berupa URL http(s) lengkap.".into(),
                "`webhook_url` must be an absolute http(s) URL.".into(),
            ),
            WebhookNotPublic => (
                "Webhook tidak diizinkan",
                "Webhook not allowed",
                "`webhook_url` harus menuju alamat publik; server ini tidak memanggil alamat loopback, privat, atau link-local.".into(),
                "`webhook_url` must point to a public address; this server does not call loopback, private or link-local addresses.".into(),
            ),
            Unauthorized => (
                "Perlu masuk",
                "Sign-in required",
                "Masuk ke akun Anda atau kirim kunci API yang valid (Authorization: Bearer).".into(),
                "Sign in to your account or send a valid API key (Authorization: Bearer).".into(),
            ),
            Forbidden { missing } => (
                "Tidak diizinkan",
                "Not allowed",
                format!("Akses ini memerlukan `{missing}`."),
                format!("This access needs `{missing}`."),
            ),
            CsrfFailed => (
                "Token formulir tidak valid",
                "Invalid form token",
                "Formulir ini kedaluwarsa atau tidak berasal dari situs ini. Muat ulang halaman dan coba lagi.".into(),
                "This form has expired or did not come from this site. Reload the page and try again.".into(),
            ),
            InvalidCredentials => (
                "Gagal masuk",
                "Sign-in failed",
                "Email atau kata sandi salah.".into(),
                "Wrong email or password.".into(),
            ),
            WeakPassword { rule } => (
                "Kata sandi terlalu lemah",
                "Password too weak",
                match *rule {
                    "contains_email" => "Kata sandi tidak boleh memuat alamat email Anda.".into(),
                    "common" => "Kata sandi ini terlalu mudah ditebak (kata umum, urutan tombol, atau karakter berulang). Gunakan beberapa kata acak.".into(),
                    _ => "Kata sandi harus terdiri dari paling sedikit 10 karakter.".into(),
                },
                match *rule {
                    "contains_email" => "The password must not contain your email address.".into(),
                    "common" => "This password is too easy to guess (a common word, a keyboard run or repeated characters). Use a few random words.".into(),
                    _ => "The password must be at least 10 characters long.".into(),
                },
            ),
            EmailTaken => (
                "Email sudah terdaftar",
                "Email already registered",
                "Alamat email ini sudah dipakai akun lain.".into(),
                "This email address is already used by another account.".into(),
            ),
            SignupsClosed => (
                "Pendaftaran ditutup",
                "Sign-up closed",
                "Layanan ini tidak menerima pendaftaran akun baru. Hubungi pengelolanya jika Anda memerlukan akun; takarir tetap dapat dibuat tanpa akun.".into(),
                "This service does not accept new accounts. Contact its operator if you need one; captions can still be made without an account.".into(),
            ),
            InvalidEmail => (
                "Email tidak valid",
                "Invalid email",
                "Masukkan alamat email yang valid.".into(),
                "Enter a valid email address.".into(),
            ),
            TooManyAttempts { retry_after } => (
                "Terlalu banyak percobaan masuk",
                "Too many sign-in attempts",
                format!("Terlalu banyak percobaan gagal. Coba lagi dalam {retry_after} detik."),
                format!("Too many failed attempts. Try again in {retry_after} seconds."),
            ),
            InvalidToken => (
                "Tautan tidak berlaku",
                "Link no longer valid",
                "Tautan ini tidak dikenal, sudah dipakai, atau kedaluwarsa.".into(),
                "This link is unknown, already used, or expired.".into(),
            ),
            ExportPending => (
                "Ekspor sedang disiapkan",
                "Export being prepared",
                format!("Ekspor Anda belum selesai dibuat. Coba lagi dalam {EXPORT_RETRY_SECONDS} detik; status ekspor ada di halaman akun."),
                format!("Your export is not ready yet. Try again in {EXPORT_RETRY_SECONDS} seconds; your account page shows its status."),
            ),
            ExportFailed => (
                "Ekspor gagal dibuat",
                "Export could not be made",
                "Ekspor ini gagal dibuat dan tidak menyimpan apa pun. Buat ekspor baru dari halaman akun.".into(),
                "This export could not be made and nothing of it was stored. Make a new one from your account page.".into(),
            ),
            HistoryDecisionRequired => (
                "Pilih nasib riwayat",
                "Decide about the history",
                "Riwayat Anda berisi entri. Nyatakan apakah entri itu dihapus atau disimpan (`delete_history`).".into(),
                "Your history has entries. Say whether to delete or keep them (`delete_history`).".into(),
            ),
            TextUnavailable => (
                "Pembacaan teks tidak tersedia",
                "Text reading unavailable",
                "Model pembaca teks (models/text) tidak tersedia. Minta takarir tanpa fitur `text`, atau hubungi pengelola layanan.".into(),
                "The text reading model (models/text) is not available. Ask without the `text` feature, or contact the operator.".into(),
            ),
            ReasonRequired => (
                "Alasan diperlukan",
                "Reason required",
                "Membuka data pribadi pengguna memerlukan alasan tertulis.".into(),
                "Opening a user's personal data requires a written reason.".into(),
            ),
        };
        match lang {
            Lang::Id => (ti.to_string(), di),
            Lang::En => (te.to_string(), de),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self, lang: Lang, request_id: &str) -> Problem {
        let (title, detail) = self.messages(lang);
        Problem {
            kind: format!("urn:takarir:problem:{}", self.code()),
            title,
            status: self.status().as_u16(),
            detail,
            code: self.code().to_string(),
            request_id: request_id.to_string(),
        }
    }

    /// The full response for this error.
    pub fn render(&self, lang: Lang, request_id: &str) -> Response {
        let body = serde_json::to_vec(&self.problem(lang, request_id)).unwrap_or_default();
        let mut res = (self.status(), body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.code()),
        );
        if let Some(s) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

fn mb(bytes: u64) -> String {
    let v = bytes as f64 / 1_000_000.0;
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.render(Lang::default(), "");
        res.extensions_mut().insert(self);
        res
    }
}

impl From<takarir_store::Error> for ApiError {
    fn from(e: takarir_store::Error) -> Self {
        match e {
            takarir_store::Error::NotFound => ApiError::NotFound,
            takarir_store::Error::Conflict("email") => ApiError::EmailTaken,
            takarir_store::Error::Invalid("email", _) => ApiError::InvalidEmail,
            takarir_store::Error::Invalid("reason", _) => ApiError::ReasonRequired,
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::Internal
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::FileTooLarge { limit, .. } => ApiError::PayloadTooLarge { limit },
            EngineError::TooManyPixels {
                width,
                height,
                limit_megapixels,
            } => ApiError::TooManyPixels {
                width,
                height,
                limit_megapixels,
            },
            EngineError::TooMuchMemory {
                width,
                height,
                limit_mb,
                ..
            } => ApiError::TooMuchMemory {
                width,
                height,
                limit_mb,
            },
            EngineError::UnsupportedFormat => ApiError::UnsupportedMediaType,
            EngineError::Empty => ApiError::EmptyImage,
            EngineError::CorruptImage(_) => ApiError::CorruptImage,
            EngineError::UnsupportedLanguage { lang, supported } => {
                ApiError::LanguageNotSupported { lang, supported }
            }
            EngineError::InvalidOption(msg) => {
                // Options are validated before the engine sees them; reaching this is a bug
                // in that validation, but it is still the client's option, not a 500.
                tracing::warn!(%msg, "engine refused an option the server accepted");
                ApiError::InvalidOption {
                    name: "options".into(),
                    value: String::new(),
                    expected: "a combination this model supports",
                }
            }
            other => {
                tracing::error!(error = %other, "engine failure");
                ApiError::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_differ_by_language_and_codes_are_stable() {
        let e = ApiError::CorruptImage;
        assert_ne!(e.messages(Lang::Id), e.messages(Lang::En));
        let p = e.problem(Lang::En, "r1");
        assert_eq!(p.status, 422);
        assert_eq!(p.code, "corrupt_image");
        assert_eq!(
            ApiError::from(EngineError::UnsupportedFormat).status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let s = ApiError::SignupsClosed.problem(Lang::Id, "r2");
        assert_eq!((s.status, s.code.as_str()), (403, "signups_closed"));
        assert_ne!(
            ApiError::SignupsClosed.messages(Lang::Id),
            ApiError::SignupsClosed.messages(Lang::En)
        );
        let t = ApiError::TextUnavailable;
        assert_eq!(t.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_ne!(t.messages(Lang::Id).1, t.messages(Lang::En).1);
        assert_eq!(mb(20_000_000), "20");
        assert_eq!(mb(1_500_000), "1.5");
    }
}
