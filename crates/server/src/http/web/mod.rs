//! The web pages: server-rendered, Indonesian by default, complete without JavaScript. The
//! templates, the stylesheet and the script are compiled into the binary. [`pages`] has the
//! caption page and the static pages, [`account`] the account and admin pages.

pub mod account;
pub mod pages;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment};

use crate::error::ApiError;
use crate::i18n::Lang;
use crate::state::AppState;

/// The compiled-in templates, parsed once.
pub fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in [
            ("base.html", include_str!("../../../templates/base.html")),
            ("index.html", include_str!("../../../templates/index.html")),
            (
                "privacy.html",
                include_str!("../../../templates/privacy.html"),
            ),
            (
                "contact.html",
                include_str!("../../../templates/contact.html"),
            ),
            (
                "account.html",
                include_str!("../../../templates/account.html"),
            ),
            ("admin.html", include_str!("../../../templates/admin.html")),
            (
                "account_form.html",
                include_str!("../../../templates/account_form.html"),
            ),
        ] {
            env.add_template(name, src).expect("templates compile");
        }
        env
    })
}

/// Interface strings: (key, Indonesian, English).
const STRINGS: &[(&str, &str, &str)] = &[
    ("tagline", "Takarir gambar otomatis, tanpa menyimpan foto Anda.", "Automatic image captions, without keeping your photos."),
    ("nav_home", "Beranda", "Home"),
    ("nav_privacy", "Privasi", "Privacy"),
    ("nav_contact", "Kontak", "Contact"),
    ("switch_label", "English", "Bahasa Indonesia"),
    ("switch_title", "Switch to English", "Ganti ke Bahasa Indonesia"),
    ("skip", "Langsung ke isi", "Skip to content"),
    ("heading", "Buat takarir untuk gambar", "Caption an image"),
    ("choose", "Pilih gambar (boleh lebih dari satu)", "Choose images (several allowed)"),
    ("drop_hint", "Atau seret gambar ke sini, atau tempel (Ctrl+V). JPEG, PNG, WebP, GIF, BMP, TIFF.", "Or drag images here, or paste them (Ctrl+V). JPEG, PNG, WebP, GIF, BMP, TIFF."),
    ("limit", "Batas", "Limit"),
    ("images_per_upload", "gambar per kiriman", "images per upload"),
    ("nav_label", "Navigasi utama", "Main navigation"),
    ("settings", "Pengaturan", "Settings"),
    ("caption_lang", "Bahasa takarir", "Caption language"),
    ("lang_id", "Bahasa Indonesia", "Indonesian"),
    ("lang_en", "Bahasa Inggris", "English"),
    ("lang_both", "Keduanya", "Both"),
    ("style", "Gaya", "Style"),
    ("style_short", "Singkat (maks. 12 kata)", "Short (at most 12 words)"),
    ("style_sentence", "Satu kalimat", "One sentence"),
    ("style_detailed", "Terperinci", "Detailed"),
    ("alternatives", "Jumlah alternatif (1–5)", "Alternatives (1–5)"),
    ("gender_neutral", "Gunakan kata netral gender (orang, anak)", "Use gender-neutral words (person, child)"),
    ("submit", "Buat takarir", "Create captions"),
    ("results", "Hasil", "Results"),
    ("caption", "Takarir", "Caption"),
    ("size", "Ukuran", "Size"),
    ("format", "Format", "Format"),
    ("camera", "Kamera", "Camera"),
    ("date_taken", "Tanggal diambil", "Date taken"),
    ("gps_present", "Berkas ini memuat lokasi GPS. Kami tidak membacanya atau menyimpannya, tetapi pertimbangkan untuk menghapusnya sebelum membagikan foto.", "This file contains a GPS location. We neither read nor keep it, but consider removing it before sharing the photo."),
    ("needs_review", "Periksa sebelum dipakai sebagai teks alternatif: takarir ini mungkin tidak sesuai dengan foto.", "Check before using it as alt text: this caption may not match the photo."),
    ("confidence", "Keyakinan", "Confidence"),
    ("objects", "Objek terdeteksi", "Detected objects"),
    ("tags", "Tag", "Tags"),
    ("text_read", "Teks terbaca", "Text read"),
    ("none_found", "tidak ada", "none"),
    ("copy", "Salin", "Copy"),
    ("copied", "Tersalin", "Copied"),
    ("preview", "Pratinjau gambar yang diunggah", "Preview of the uploaded image"),
    ("uploading", "Mengunggah…", "Uploading…"),
    ("processing", "Memproses…", "Processing…"),
    ("error", "Gagal", "Failed"),
    ("no_store", "Gambar diproses di memori dan tidak disimpan (tugas banyak foto: terenkripsi, hanya sampai diberi takarir).", "Images are processed in memory and not stored (batch jobs: encrypted, only until captioned)."),
    ("model", "Model", "Model"),
    ("privacy_title", "Kebijakan Privasi", "Privacy Policy"),
    ("contact_title", "Kontak", "Contact"),
    ("version", "Versi", "Version"),
    ("effective", "berlaku sejak", "effective"),
    ("batch_heading", "Banyak foto sekaligus", "Many photos at once"),
    ("batch_hint", "Untuk folder atau arsip ZIP: diproses di latar belakang. Gambar dihapus segera setelah diberi takarir; hasilnya disimpan beberapa hari (lihat Kebijakan Privasi) atau sampai Anda menghapusnya.", "For folders or ZIP archives: processed in the background. Images are deleted as soon as they are captioned; results are kept for a few days (see the Privacy Policy) or until you delete them."),
    ("batch_choose", "Pilih gambar atau berkas ZIP", "Choose images or ZIP files"),
    ("batch_submit", "Kirim sebagai tugas", "Send as a job"),
    ("batch_sending", "Mengirim…", "Sending…"),
    ("batch_progress", "Diproses", "Processed"),
    ("batch_done", "Selesai", "Done"),
    ("batch_failed", "gagal", "failed"),
    ("nav_account", "Akun", "Account"),
    ("policy_notice", "Kebijakan privasi baru, versi", "New privacy policy, version"),
    ("policy_ack", "Saya sudah membaca", "I have read it"),
];

/// Account interface strings: (key, Indonesian, English).
const ACCOUNT_STRINGS: &[(&str, &str, &str)] = &[
    ("account", "Akun", "Account"),
    ("signup", "Daftar", "Sign up"),
    ("login", "Masuk", "Sign in"),
    ("logout", "Keluar", "Sign out"),
    ("email", "Email", "Email"),
    ("password", "Kata sandi", "Password"),
    ("password_hint", "Paling sedikit 10 karakter, tidak memuat alamat email Anda.", "At least 10 characters, not containing your email address."),
    ("new_password", "Kata sandi baru", "New password"),
    ("forgot", "Lupa kata sandi?", "Forgot your password?"),
    ("send_reset", "Kirim tautan atur ulang", "Send reset link"),
    ("reset", "Atur ulang kata sandi", "Reset password"),
    ("optional", "Akun bersifat opsional: semua fitur takarir tetap bisa dipakai tanpa akun.", "Accounts are optional: every caption feature works without one."),
    ("no_account", "Belum punya akun?", "No account yet?"),
    ("have_account", "Sudah punya akun?", "Already have an account?"),
    ("signup_policy", "Dengan mendaftar, Anda menyatakan telah membaca", "By signing up you acknowledge that you have read the"),
    ("verified", "terverifikasi", "verified"),
    ("unverified", "belum diverifikasi: periksa email Anda", "not verified yet: check your email"),
    ("profile", "Profil", "Profile"),
    ("change_email", "Ubah email", "Change email"),
    ("change_password", "Ganti kata sandi", "Change password"),
    ("current_password", "Kata sandi saat ini", "Current password"),
    ("password_changed", "Kata sandi diganti. Sesi Anda di perangkat lain telah diakhiri.", "Password changed. Your sessions on other devices have been signed out."),
    ("preferences", "Preferensi", "Preferences"),
    ("default", "Bawaan", "Default"),
    ("history_on", "Simpan riwayat takarir (teks dan pengaturan saja, tidak pernah gambarnya)", "Keep caption history (text and settings only, never the image)"),
    ("history_off_q", "Jika riwayat dimatikan, apa yang terjadi dengan entri yang ada?", "If history is turned off, what happens to the existing entries?"),
    ("history_keep", "Simpan", "Keep them"),
    ("history_delete", "Hapus", "Delete them"),
    ("training_on", "Izinkan gambar dan takarir saya dipakai untuk melatih model", "Allow my images and captions to be used to train the model"),
    ("save", "Simpan", "Save"),
    ("history", "Riwayat", "History"),
    ("search", "Cari", "Search"),
    ("original", "Asli", "Original"),
    ("correction", "Koreksi", "Correction"),
    ("delete", "Hapus", "Delete"),
    ("delete_all", "Hapus semua riwayat", "Delete all history"),
    ("history_empty", "Tidak ada entri.", "No entries."),
    ("consents", "Catatan persetujuan", "Consent record"),
    ("granted", "diberikan", "granted"),
    ("withdrawn", "ditarik", "withdrawn"),
    ("withdraw", "Tarik persetujuan pelatihan", "Withdraw training consent"),
    ("usage", "Penggunaan", "Usage"),
    ("training_items", "Data pelatihan", "Training items"),
    ("model_in_use", "Model yang dipakai:", "Model in use:"),
    ("model_trained_yes", "data pelatihan Anda ikut melatihnya (model tidak dilatih ulang bila izin ditarik, tetapi diganti pada versi berikutnya).", "your training items helped train it (a model is not retrained when consent is withdrawn, but replaced at the next version)."),
    ("model_trained_no", "tidak dilatih dengan data Anda.", "not trained on your items."),
    ("exports", "Ekspor data", "Data export"),
    ("export_create", "Buat ekspor (ZIP)", "Create an export (ZIP)"),
    ("export_ready", "Ekspor siap. Tautan ini berlaku 7 hari dan hanya ditampilkan sekali:", "Export ready. This link works for 7 days and is shown only once:"),
    ("export_pending", "Ekspor sedang disiapkan; muat ulang halaman ini untuk melihat statusnya. Tautan ini berfungsi setelah ekspor siap, selama 7 hari, dan hanya ditampilkan sekali:", "Your export is being prepared; reload this page to see its status. This link works once it is ready, for 7 days, and is shown only once:"),
    ("status_pending", "sedang disiapkan", "being prepared"),
    ("status_ready", "siap", "ready"),
    ("status_failed", "gagal dibuat; buat yang baru", "could not be made; make a new one"),
    ("expires", "berlaku hingga", "valid until"),
    ("revoke", "Cabut", "Revoke"),
    ("api_keys", "Kunci API", "API keys"),
    ("key_name", "Nama", "Name"),
    ("key_scopes", "Cakupan", "Scopes"),
    ("key_create", "Buat kunci", "Create key"),
    ("key_once", "Salin kunci ini sekarang; kunci tidak akan ditampilkan lagi:", "Copy this key now; it will not be shown again:"),
    ("jobs", "Tugas banyak foto", "Batch jobs"),
    ("job_done", "diberi takarir", "captioned"),
    ("job_failed", "gagal", "failed"),
    ("sessions", "Sesi aktif", "Active sessions"),
    ("last_used", "terakhir dipakai", "last used"),
    ("audit", "Akses staf ke data Anda", "Staff access to your data"),
    ("audit_none", "Belum pernah.", "Never."),
    ("reason", "Alasan", "Reason"),
    ("delete_account", "Hapus akun", "Delete account"),
    ("delete_warn", "Semua data Anda (riwayat, preferensi, persetujuan, data pelatihan, ekspor, tugas, kunci) dihapus untuk selamanya.", "All your data (history, preferences, consents, training items, exports, batch jobs, keys) is deleted for good."),
    ("confirm_password", "Masukkan kata sandi untuk memastikan", "Enter your password to confirm"),
    ("deleted", "Akun Anda telah dihapus.", "Your account has been deleted."),
    ("verified_ok", "Alamat email Anda terverifikasi.", "Your email address is verified."),
    ("reset_sent", "Jika alamat itu terdaftar, tautan atur ulang telah dikirim.", "If that address has an account, a reset link has been sent."),
    ("reset_ok", "Kata sandi diubah. Silakan masuk.", "Password changed. Please sign in."),
    ("saved", "Tersimpan.", "Saved."),
    ("policy_notice", "Kebijakan privasi baru, versi", "New privacy policy, version"),
    ("policy_ack", "Saya sudah membaca", "I have read it"),
    ("admin", "Admin", "Admin"),
    ("aggregates", "Angka gabungan", "Aggregates"),
    ("accounts", "Akun", "Accounts"),
    ("verified_accounts", "Akun terverifikasi", "Verified accounts"),
    ("admins", "Admin", "Admins"),
    ("usage_30", "Takarir 30 hari terakhir", "Captions, last 30 days"),
    ("account_status", "Status akun", "Account status"),
    ("access_rule", "Membuka data pribadi satu pengguna memerlukan alasan; setiap akses tercatat dan terlihat oleh pengguna itu.", "Opening one user's personal data requires a reason; each access is recorded and shown to that user."),
    ("role", "Peran", "Role"),
    ("created", "Dibuat", "Created"),
    ("open_data", "Buka data", "Open data"),
    ("yes", "ya", "yes"),
    ("no", "tidak", "no"),
    ("data_of", "Data pengguna", "Data of user"),
    ("audited", "Akses ini telah dicatat di log audit pengguna.", "This access has been recorded in the user's audit log."),
    ("prefs_anon", "Tanpa akun, preferensi ini disimpan di cookie peramban Anda.", "Without an account, these preferences are kept in a cookie in your browser."),
];

/// Strings of a table in one language.
fn pick(
    table: &[(&'static str, &'static str, &'static str)],
    lang: Lang,
) -> BTreeMap<&'static str, &'static str> {
    table
        .iter()
        .map(|&(k, id, en)| (k, lang.pick(id, en)))
        .collect()
}

/// Interface strings in one language.
pub fn strings(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    pick(STRINGS, lang)
}

/// Account interface strings in one language.
pub fn account_strings(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    pick(ACCOUNT_STRINGS, lang)
}

/// A page with an error's status (and `Retry-After` where one applies).
pub fn with_error(mut res: Response, e: &ApiError) -> Response {
    *res.status_mut() = e.status();
    if let Some(s) = e.retry_after() {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

/// A 303 redirect.
pub fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// A response with one more `Set-Cookie`.
pub fn with_cookie(mut res: Response, cookie: HeaderValue) -> Response {
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

/// What the page asks for: captions; objects and tags when the model has a detector and a
/// tagger; text whenever this server can read it: for alt text the words in a photo often
/// matter most (it costs about a quarter of a second more per photo).
fn page_features(state: &AppState) -> String {
    let mut f = vec!["caption"];
    if state.captioner().info().vision {
        f.extend(["objects", "tags"]);
    }
    if state.text_available() {
        f.push("text");
    }
    f.join(",")
}

pub fn render(
    state: &AppState,
    name: &str,
    lang: Lang,
    path: &str,
    extra: minijinja::Value,
) -> Response {
    let info = state.captioner().info();
    let langs = &info.languages;
    let ctx = context! {
        lang => lang.code(),
        other_lang => match lang { Lang::Id => "en", Lang::En => "id" },
        path => path,
        t => strings(lang),
        model_name => info.name.clone(),
        model_langs => langs.clone(),
        both_ok => langs.iter().any(|l| l == "id") && langs.iter().any(|l| l == "en"),
        default_caption_lang => if langs.iter().any(|l| l == lang.code()) { lang.code() } else { state.captioner().default_language() },
        max_mb => state.config().max_upload_bytes / 1_000_000,
        page_features => page_features(state),
        max_files => state.config().max_files,
        job_days => state.config().job_result_days.max(1),
        model_update_days => state.config().model_update_days,
        session_idle_days => state.config().session_idle_seconds.div_ceil(86_400),
        contact_email => state.config().contact_email.clone(),
        // The version in force is the last of the policy file the service runs with.
        privacy_version => state.policy().current().version.clone(),
        privacy_date => state.policy().current().date.clone(),
        tls => state.config().tls(),
        signups_allowed => state.config().signups_allowed,
        ..extra
    };
    match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => {
            let mut res = Html(html).into_response();
            res.headers_mut().insert(
                header::CONTENT_LANGUAGE,
                HeaderValue::from_static(lang.code()),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, template = name, "template failed");
            ApiError::Internal.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PRIVACY_DATE, PRIVACY_VERSION};

    #[test]
    fn templates_render_in_both_languages() {
        let env = templates();
        for lang in [Lang::Id, Lang::En] {
            for name in ["index.html", "privacy.html", "contact.html"] {
                let html = env
                    .get_template(name)
                    .and_then(|t| {
                        t.render(context! {
                            lang => lang.code(), other_lang => "en", path => "/",
                            t => strings(lang), model_name => "m", model_langs => vec!["en"],
                            both_ok => false, default_caption_lang => "en", max_mb => 20,
                            page_features => "caption,text",
                            max_files => 10, job_days => 7, session_idle_days => 7,
                            model_update_days => 0,
                            privacy_version => PRIVACY_VERSION,
                            privacy_date => PRIVACY_DATE, tls => false,
                        })
                    })
                    .map_err(|e| format!("{e:#}"))
                    .unwrap();
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
            }
        }
    }
}
